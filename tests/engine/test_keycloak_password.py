"""Keycloak takes a new user's password in a second request. When that step fails and the
clean-up delete fails too, the IdP user accord made is left behind: the operation must then
never answer ``active`` without the password; it retries (setting the password again) or
compensates (deleting that user), and the guarantees hold (G3, G7)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from accord.bootstrap import Accord
from accord.config import Settings
from accord.domain import errors
from accord.services.registration import Registration, register
from tests.contracts.conftest import Context
from tests.engine.conftest import open_app, scalar
from tests.guarantees import assert_guarantees

PASSWORD = "correct horse battery"
EMAIL = "kim@example.com"


@pytest.fixture
async def keycloak(settings: Settings, database_url: str, tmp_path: Path) -> AsyncIterator[Accord]:
    async with open_app("keycloak", settings, Context(database_url, tmp_path)) as instance:
        yield instance


def has_password(app: Accord, password: str) -> bool:
    """Whether the emulated realm holds ``password`` for the one user with ``EMAIL``."""
    realm = app.harness.realm  # type: ignore[attr-defined]
    (user,) = [u for u in realm.users.values() if u["email"] == EMAIL]
    digest = hashlib.sha256(password.encode()).hexdigest()
    return realm.password_digests.get(user["id"]) == digest


async def test_a_lost_password_step_whose_clean_up_fails_is_redone_before_active(
    keycloak: Accord,
) -> None:
    harness = keycloak.harness  # type: ignore[attr-defined]
    await harness.inject("unavailable", "set_password")
    await harness.inject("unavailable", "delete")  # the user stays, without a password
    result = await register(keycloak, Registration(EMAIL, PASSWORD, "Kim"), idempotency_key="k")
    assert result["user"]["status"] == "active"
    assert has_password(keycloak, PASSWORD)  # the bug: active, and no password at all
    await assert_guarantees(keycloak)


async def test_while_the_password_cannot_be_set_the_registration_waits(keycloak: Accord) -> None:
    harness = keycloak.harness  # type: ignore[attr-defined]
    await harness.inject("unavailable", "set_password")
    await harness.inject("unavailable", "delete")
    await harness.inject("unavailable", "set_password")  # the retry's attempt fails as well
    request = Registration(EMAIL, PASSWORD, "Kim")
    with pytest.raises(errors.OperationPending):
        await register(keycloak, request, idempotency_key="k")
    assert await scalar(keycloak, "SELECT status FROM users") == "provisioning"  # not active
    result = await register(keycloak, request, idempotency_key="k")  # the client's retry
    assert result["user"]["status"] == "active" and has_password(keycloak, PASSWORD)
    await assert_guarantees(keycloak)


async def test_a_refused_password_whose_clean_up_fails_is_compensated(keycloak: Accord) -> None:
    harness = keycloak.harness  # type: ignore[attr-defined]
    harness.realm.password_min_length = 64  # the realm's policy refuses the password
    await harness.inject("unavailable", "delete")  # and the adapter's own clean-up fails
    with pytest.raises(errors.AccordError) as caught:
        await register(keycloak, Registration(EMAIL, PASSWORD, "Kim"), idempotency_key="k")
    assert not isinstance(caught.value, errors.OperationPending)
    assert await scalar(keycloak, "SELECT state FROM operations") == "failed"
    assert await scalar(keycloak, "SELECT count(*) FROM users") == 0  # G7
    assert [u async for u in keycloak.idp.iter_users()] == []  # G3: compensation deleted it
    await assert_guarantees(keycloak)

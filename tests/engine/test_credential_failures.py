"""Set-password links and temporary passwords when the IdP refuses, does not answer, or the
user changes meanwhile: a refusal gives the link back, an unknown outcome keeps it used, and
nobody who is gone or disabled is activated or signed in."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.model import CredentialMode
from accord.domain.ports import NewRemoteUser
from accord.services import credentials
from accord.services.deprovisioning import deprovision_user
from accord.services.provisioning import NewUser, create_user
from accord.testing import FakeIdentityProvider, Fault
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.patience import PATIENCE

GOOD = "my own good password"
TOO_LONG = "a long phrase " * 20  # strong, but past the local IdP's 128 characters


async def linked(accord: Accord) -> tuple[str, str]:
    """An invited user's id and a set-password link for them."""
    org = await new_org(accord)
    made = await create_user(accord, NewUser("ada@example.com", "Ada", org), caller=PLATFORM)
    user_id = made["user"]["id"]
    token, _ = await credentials.issue_password_setup(accord, UUID(user_id))
    return user_id, token


async def test_a_password_the_idp_refuses_gives_the_link_back(accord: Accord) -> None:
    _, token = await linked(accord)
    with pytest.raises(errors.PasswordRejected) as refused:
        await credentials.complete_password_setup(accord, token, TOO_LONG)
    assert "128" in refused.value.message  # the IdP's reason, told to the person
    done = await credentials.complete_password_setup(accord, token, GOOD)
    assert done["status"] == "active"


async def test_a_setup_the_idp_may_have_applied_keeps_the_link_used(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    _, token = await linked(accord_fake)
    fake_idp.script("update", Fault.TIMEOUT)
    with pytest.raises(errors.OutcomeUnknown):
        await credentials.complete_password_setup(accord_fake, token, GOOD)
    # Whoever holds the link cannot set a second password over one that may have been applied.
    with pytest.raises(errors.TokenInvalid):
        await credentials.complete_password_setup(accord_fake, token, "another good password")


async def test_an_idp_outage_before_the_setup_gives_the_link_back(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    _, token = await linked(accord_fake)
    fake_idp.script("update", Fault.UNAVAILABLE)
    with pytest.raises(errors.ProviderUnavailable):
        await credentials.complete_password_setup(accord_fake, token, GOOD)
    assert (await credentials.complete_password_setup(accord_fake, token, GOOD))["status"] == (
        "active"
    )


class UpdateGate:
    """The IdP applies a password update, then its answer waits at a gate: the user can change
    meanwhile."""

    def __init__(self, inner: FakeIdentityProvider) -> None:
        self._inner = inner
        self.name = inner.name
        self.waiting = asyncio.Event()
        self.gate = asyncio.Event()

    async def update(self, remote_id: str, **changes: Any) -> Any:
        updated = await self._inner.update(remote_id, **changes)
        if changes.get("password") is not None:
            self.waiting.set()
            await self.gate.wait()
        return updated

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_a_user_deprovisioned_during_the_setup_is_not_brought_back(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    user_id, token = await linked(accord_fake)
    gated = UpdateGate(fake_idp)
    accord_fake.idp = gated  # type: ignore[assignment]
    setting = asyncio.create_task(credentials.complete_password_setup(accord_fake, token, GOOD))
    await asyncio.wait_for(gated.waiting.wait(), PATIENCE)
    await deprovision_user(accord_fake, user_id, caller=PLATFORM)
    gated.gate.set()
    with pytest.raises(errors.TokenInvalid):
        await setting
    status = await scalar(accord_fake, "SELECT status FROM users WHERE id = :u", u=user_id)
    assert status == "disabled"
    accord_fake.idp = fake_idp
    await assert_guarantees(accord_fake)


async def test_a_password_of_an_identity_accord_does_not_hold_signs_nobody_in(
    accord: Accord,
) -> None:
    await accord.idp.create(NewRemoteUser(uuid4(), "stray@example.com", "Stray", password=GOOD))
    assert await accord.idp.verify_password("stray@example.com", GOOD)  # type: ignore[attr-defined]
    with pytest.raises(errors.InvalidCredentials):
        await credentials.verify_password(accord, "stray@example.com", GOOD)


async def test_a_replacement_the_idp_refuses_keeps_the_temporary_password(
    accord: Accord,
) -> None:
    org = await new_org(accord)
    request = NewUser("ada@example.com", "Ada", org, credential=CredentialMode.TEMP_PASSWORD)
    temporary = (await create_user(accord, request, caller=PLATFORM))["temporary_password"]
    with pytest.raises(errors.PasswordRejected) as refused:
        await credentials.replace_temporary_password(accord, "ada@example.com", temporary, TOO_LONG)
    assert "128" in refused.value.message
    user = await credentials.replace_temporary_password(accord, "ada@example.com", temporary, GOOD)
    assert user["status"] == "active"


async def test_a_temporary_password_of_an_identity_accord_does_not_hold_activates_nothing(
    accord: Accord,
) -> None:
    remote = await accord.idp.create(NewRemoteUser(uuid4(), "stray@example.com", "Stray"))
    local = accord.idp
    await local.set_temporary_password(  # type: ignore[attr-defined]
        remote.remote_id, "temporary secret 1", datetime.now(UTC) + timedelta(hours=1)
    )
    with pytest.raises(errors.InvalidCredentials):
        await credentials.replace_temporary_password(
            accord, "stray@example.com", "temporary secret 1", GOOD
        )
    assert await scalar(accord, "SELECT count(*) FROM users") == 0


async def test_an_expired_temporary_password_signs_nobody_in(accord: Accord) -> None:
    org = await new_org(accord)
    request = NewUser("ada@example.com", "Ada", org, credential=CredentialMode.TEMP_PASSWORD)
    temporary = (await create_user(accord, request, caller=PLATFORM))["temporary_password"]
    await scalar(
        accord, "UPDATE local_credentials SET expires_at = now() - interval '1 s' RETURNING 1"
    )
    # Not "change your password": an expired one proves nothing, so it is just wrong.
    with pytest.raises(errors.InvalidCredentials):
        await credentials.verify_password(accord, "ada@example.com", temporary)

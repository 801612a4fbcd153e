"""A process started with the wrong ACCORD_SECRET_KEY: it cannot open an open operation's sealed
password, nor recognise its request's fingerprint. It must say so (a misconfiguration), spend
none of the operation's attempts and leave it resumable; the right key then finishes it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from accord.adapters.sealing import new_key_text
from accord.bootstrap import Accord, build
from accord.config import Settings
from accord.domain import errors
from accord.services import worker
from accord.services.registration import Registration, register
from accord.testing import FakeIdentityProvider, FakeMailer, Fault
from tests.engine.conftest import scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import make_everything_due

REQUEST = Registration("kim@example.com", "correct horse battery", "Kim")


@pytest.fixture
async def other_key(settings: Settings, fake_idp: FakeIdentityProvider) -> AsyncIterator[Accord]:
    """accord on the same database and IdP, with a different ACCORD_SECRET_KEY."""
    wrong = settings.model_copy(update={"secret_key": SecretStr(new_key_text())})
    instance = build(wrong, idp=fake_idp)
    try:
        yield instance
    finally:
        await instance.aclose()


async def attempts(accord: Accord) -> int:
    return await scalar(accord, "SELECT attempts FROM operations")


async def test_a_wrong_key_is_a_misconfiguration_and_burns_no_attempt(
    accord_fake: Accord, other_key: Accord, fake_idp: FakeIdentityProvider
) -> None:
    fake_idp.script("create", Fault.UNAVAILABLE)
    with pytest.raises(errors.OperationPending):
        await register(accord_fake, REQUEST, idempotency_key="k")
    before = await attempts(accord_fake)

    # The client's retry reaches a process with another key: told why, not "key reused".
    with pytest.raises(errors.ConfigurationError, match="ACCORD_SECRET_KEY differs"):
        await register(other_key, REQUEST, idempotency_key="k")
    # That process's worker, however many passes it makes, leaves the operation alone.
    for _ in range(5):
        await make_everything_due(other_key)
        done = await worker.run_until_idle(other_key, FakeMailer())
        assert (done.misconfigured, done.succeeded, done.failed) == (1, 0, 0)
    assert await attempts(accord_fake) == before  # no attempt spent
    assert await scalar(accord_fake, "SELECT state FROM operations") == "open"
    assert await scalar(accord_fake, "SELECT lease_until FROM operations") is None
    assert await scalar(accord_fake, "SELECT status FROM users") == "provisioning"

    # The right key is back: the retry finishes the registration.
    result = await register(accord_fake, REQUEST, idempotency_key="k")
    assert result["user"]["status"] == "active"
    await assert_guarantees(accord_fake)

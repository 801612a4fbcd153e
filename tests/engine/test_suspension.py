"""Suspension and reactivation through the engine, on every provider: both systems end equal,
an outage is finished by the worker, a rejection is compensated, and one operation at a time
works on a user."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import pytest

from accord.bootstrap import Accord
from accord.domain import errors
from accord.services import worker
from accord.services.deprovisioning import deprovision_user
from accord.services.provisioning import NewUser, create_user
from accord.services.suspension import reactivate_user, suspend_user
from accord.testing import FakeIdentityProvider, FakeMailer, Fault
from tests.drift.test_races import Gated
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import make_everything_due

EMAIL = "sue@example.com"


async def make_user(app: Accord) -> UUID:
    org = await new_org(app)
    made = await create_user(app, NewUser(EMAIL, "Sue", org), caller=PLATFORM)
    return UUID(made["user"]["id"])


async def remote_enabled(app: Accord, user_id: UUID) -> bool:
    remote_id = await scalar(app, "SELECT remote_id FROM idp_links WHERE user_id = :u", u=user_id)
    return (await app.idp.get(remote_id)).enabled


async def status(app: Accord, user_id: UUID) -> str:
    return await scalar(app, "SELECT status FROM users WHERE id = :u", u=user_id)


async def audited(app: Accord, action: str) -> int:
    return await scalar(app, "SELECT count(*) FROM audit_events WHERE action = :a", a=action)


async def test_suspend_then_reactivate_keeps_both_systems_equal(app: Accord) -> None:
    user_id = await make_user(app)
    result = await suspend_user(app, user_id, caller=PLATFORM)
    assert result["user"]["status"] == "suspended"
    assert await status(app, user_id) == "suspended"
    assert await remote_enabled(app, user_id) is False
    assert await audited(app, "user.suspended") == 1
    await assert_guarantees(app)
    again = await suspend_user(app, user_id, caller=PLATFORM)
    assert again["user"]["status"] == "suspended"
    assert await audited(app, "user.suspended") == 1  # changed nothing
    assert await audited(app, "user.suspended_repeated") == 1
    back = await reactivate_user(app, user_id, caller=PLATFORM)
    assert back["user"]["status"] == "pending"
    assert await remote_enabled(app, user_id) is True
    assert await audited(app, "user.reactivated") == 1
    await assert_guarantees(app)


async def test_an_outage_answers_pending_and_the_worker_finishes(faulty_app: Accord) -> None:
    app = faulty_app
    user_id = await make_user(app)
    await app.harness.inject("unavailable", "set_enabled")  # type: ignore[attr-defined]
    with pytest.raises(errors.OperationPending):
        await suspend_user(app, user_id, caller=PLATFORM)
    assert await status(app, user_id) == "suspended"  # access was cut before the IdP call
    assert await remote_enabled(app, user_id) is True
    await make_everything_due(app)
    assert (await worker.run_until_idle(app, FakeMailer())).succeeded == 1
    assert await remote_enabled(app, user_id) is False
    await assert_guarantees(app)

    await app.harness.inject("unavailable", "set_enabled")  # type: ignore[attr-defined]
    with pytest.raises(errors.OperationPending):
        await reactivate_user(app, user_id, caller=PLATFORM)
    assert await status(app, user_id) == "suspended"  # access comes back only after the IdP
    await make_everything_due(app)
    assert (await worker.run_until_idle(app, FakeMailer())).succeeded == 1
    assert await status(app, user_id) == "pending"
    assert await remote_enabled(app, user_id) is True
    await assert_guarantees(app)


async def test_a_rejected_suspension_is_compensated(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    app = accord_fake
    user_id = await make_user(app)
    fake_idp.script("set_enabled", Fault.REJECTED)
    with pytest.raises(errors.RemoteRejected):
        await suspend_user(app, user_id, caller=PLATFORM, idempotency_key="s1")
    assert await status(app, user_id) == "pending"
    assert await remote_enabled(app, user_id) is True
    assert await audited(app, "suspend.compensated") == 1
    assert await audited(app, "user.suspended") == 0
    with pytest.raises(errors.RemoteRejected):  # G6: the key replays the failure
        await suspend_user(app, user_id, caller=PLATFORM, idempotency_key="s1")
    await assert_guarantees(app)


async def test_a_rejected_reactivation_leaves_the_user_suspended_and_blocked(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    app = accord_fake
    user_id = await make_user(app)
    await suspend_user(app, user_id, caller=PLATFORM)
    fake_idp.script("set_enabled", Fault.GHOST)  # applied, answer lost: retried by the engine
    fake_idp.script("set_enabled", Fault.REJECTED)
    with pytest.raises(errors.OperationPending):
        await reactivate_user(app, user_id, caller=PLATFORM)
    assert await remote_enabled(app, user_id) is True  # the ghost unblocked it
    await make_everything_due(app)
    assert (await worker.run_until_idle(app, FakeMailer())).failed == 1
    assert await status(app, user_id) == "suspended"
    assert await remote_enabled(app, user_id) is False  # the compensation blocked it again
    await assert_guarantees(app)


async def test_a_suspension_exhausting_its_retries_keeps_access_cut(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    app = accord_fake
    user_id = await make_user(app)
    fake_idp.script("set_enabled", Fault.UNAVAILABLE, times=1000)
    with pytest.raises(errors.OperationPending):
        await suspend_user(app, user_id, caller=PLATFORM)
    await scalar(
        app, "UPDATE operations SET deadline_at = now() WHERE kind = 'suspend' RETURNING 1"
    )
    await make_everything_due(app)
    assert (await worker.run_until_idle(app, FakeMailer())).failed == 1
    assert await status(app, user_id) == "suspended"  # reconcile blocks the identity later


class GatedBlock(Gated):
    """Gated, also on ``set_enabled`` (keyed by remote id)."""

    async def set_enabled(self, remote_id: str, enabled: bool) -> Any:
        await self._wait("set_enabled", remote_id)
        return await self._inner.set_enabled(remote_id, enabled)


async def test_one_operation_at_a_time_and_a_deprovision_meanwhile_wins(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    app = accord_fake
    user_id = await make_user(app)
    remote_id = fake_idp.remote_id_for(user_id)
    gated = GatedBlock(fake_idp, {"set_enabled": {remote_id}})
    app.idp = gated  # type: ignore[assignment]
    running = asyncio.create_task(suspend_user(app, user_id, caller=PLATFORM))
    await gated.all_waiting.wait()
    for other in (suspend_user, reactivate_user):
        with pytest.raises(errors.OperationInProgress):
            await other(app, user_id, caller=PLATFORM)
    await deprovision_user(app, user_id, caller=PLATFORM)  # the admin's removal is not held up
    gated.open()
    await running
    assert await status(app, user_id) == "disabled"
    assert fake_idp.users == {}
    app.idp = fake_idp
    await assert_guarantees(app)

"""What one worker pass does when the IdP is misconfigured, the audit trail is kept for ever,
no throttle is configured, or there is more work than its pass limit; and what the audit listing
refuses whatever entry point asks."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from accord.config import Settings
from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import OperationState
from accord.services import worker
from accord.services.audit import AuditFilter, list_audit_events
from accord.testing import FakeContext, FakeMailer, FakeWorkSignal, Fault, fake_context
from accord.testing.memory_work import MemoryOperations
from tests.unit.test_engine import create, new_org, only_operation

PLATFORM = Caller.platform("token:platform", "admin@platform.test")


@pytest.fixture
def ctx() -> FakeContext:
    return fake_context()


async def test_a_retry_that_finds_the_idp_misconfigured_stays_open_for_later(
    ctx: FakeContext,
) -> None:
    org = await new_org(ctx)
    ctx.idp.script("create", Fault.UNAVAILABLE)
    with pytest.raises(errors.OperationPending):
        await create(ctx, org)
    ctx.idp.script("find_by_email", Fault.MISCONFIGURED)
    ctx.clock.advance(seconds=600)
    first = await worker.run_once(ctx, FakeMailer())
    assert (first.postponed, first.failed) == (1, 0)
    assert only_operation(ctx).state == OperationState.OPEN  # not failed: an operator fixes it
    ctx.clock.advance(seconds=600)
    assert (await worker.run_until_idle(ctx, FakeMailer())).succeeded == 1


async def test_with_no_retention_the_audit_trail_is_kept_for_ever() -> None:
    ctx = fake_context(settings=Settings(idp="local", audit_retention_days=0))
    await new_org(ctx)
    kept = len(ctx.store.tables.audit)
    ctx.clock.advance(hours=24 * 365 * 20)
    result = worker.Pass()
    await worker.housekeeping(ctx, result)
    assert result.deleted_audit_events == 0 and len(ctx.store.tables.audit) == kept > 0


async def test_without_a_throttle_housekeeping_still_expires_what_is_due(
    ctx: FakeContext,
) -> None:
    org = await new_org(ctx)
    await create(ctx, org)
    ctx.throttle = None
    await worker.run_until_idle(ctx, FakeMailer())  # mails the invitation: a live link
    ctx.clock.advance(hours=ctx.settings.invite_ttl_hours + 1)
    result = worker.Pass()
    await worker.housekeeping(ctx, result)
    assert (result.expired_tokens, result.swept_rate_limits) == (1, 0)


async def test_run_until_idle_stops_after_its_pass_limit(ctx: FakeContext) -> None:
    org = await new_org(ctx, max_users=50)
    for n in range(25):
        await create(ctx, org, email=f"u{n}@example.com", key=None)
    mailer = FakeMailer()
    first = await worker.run_until_idle(ctx, mailer, max_passes=1)
    assert first.mail.sent == len(mailer.sent) == 20  # one pass: its batch, no more
    await worker.run_until_idle(ctx, mailer)
    assert len({m.recipient for m in mailer.sent}) == 25


def cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(
    ("limit", "action", "after", "says"),
    [
        (0, None, None, "limit must be between 1 and 200"),
        (201, None, None, "limit must be between 1 and 200"),
        (50, "", None, "action must be 1 to 100 characters"),
        (50, "x" * 101, None, "action must be 1 to 100 characters"),
        (50, None, cursor(["2026-12-01T10:00:00+00:00", "7"]), "The cursor is not valid"),
        (50, None, cursor(["2026-12-01T10:00:00", 7]), "The cursor is not valid"),
    ],
)
async def test_the_audit_listing_refuses_what_it_cannot_answer(
    ctx: FakeContext, limit: int, action: str | None, after: str | None, says: str
) -> None:
    with pytest.raises(errors.InvalidInput) as refused:
        await list_audit_events(
            ctx, AuditFilter(action=action), caller=PLATFORM, cursor=after, limit=limit
        )
    assert says in refused.value.message


async def waited(signal: FakeWorkSignal, times: int) -> None:
    """Until the worker has gone to sleep ``times`` times (at most 30 s: a busy machine)."""
    for _ in range(3000):
        if len(signal.waits) >= times:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the worker slept {len(signal.waits)} times, not {times}")


async def test_an_idle_worker_sleeps_its_poll_interval_unless_a_notice_wakes_it() -> None:
    ctx = fake_context(settings=Settings(idp="local", worker_poll_seconds=600))
    ctx.work_signal = signal = FakeWorkSignal()
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(ctx, FakeMailer(), stop))
    await waited(signal, 1)
    assert signal.waits == [600]  # nothing due, nothing known to fall due
    signal.notify()
    await waited(signal, 2)  # woken long before 600 s: another pass, then asleep again
    stop.set()
    await task


async def test_an_idle_worker_sleeps_only_until_a_retry_falls_due(ctx: FakeContext) -> None:
    ctx.settings = Settings(idp="local", worker_poll_seconds=600)
    ctx.work_signal = signal = FakeWorkSignal()
    org = await new_org(ctx)
    ctx.idp.script("create", Fault.UNAVAILABLE)
    with pytest.raises(errors.OperationPending):
        await create(ctx, org)
    retry_in = (only_operation(ctx).next_attempt_at - ctx.clock.now()).total_seconds()
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(ctx, FakeMailer(), stop))
    await waited(signal, 1)
    stop.set()
    await task
    assert signal.waits[0] == pytest.approx(max(retry_in, worker.MIN_IDLE_SECONDS))


async def test_a_pass_leases_every_due_operation_in_batches_of_free_places(
    ctx: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.settings = Settings(idp="local", worker_concurrency=8, worker_pass_operations=30)
    org = await new_org(ctx, max_users=50)
    ctx.idp.script("create", Fault.UNAVAILABLE, times=40)
    for n in range(40):
        with pytest.raises(errors.OperationPending):
            await create(ctx, org, email=f"u{n}@example.com", key=None)
    ctx.clock.advance(seconds=600)
    leases: list[int] = []
    original = MemoryOperations.lease_due

    async def counted(self: MemoryOperations, *, limit: int, lease_seconds: float) -> list:
        leases.append(limit)
        return await original(self, limit=limit, lease_seconds=lease_seconds)

    monkeypatch.setattr(MemoryOperations, "lease_due", counted)  # made per transaction
    result = worker.Pass()
    await worker.resume_due_operations(ctx, result)
    assert result.succeeded == 30  # the pass's budget, not its first batch only
    # As many as there are places at first, then whenever a quarter of them is free.
    assert leases[0] == 8 and all(2 <= n <= 8 for n in leases[:-1]) and sum(leases) == 30


async def test_a_pass_opens_one_mail_session_for_its_messages_and_none_without(
    ctx: FakeContext,
) -> None:
    mailer = FakeMailer()
    await worker.run_once(ctx, mailer)
    assert mailer.sessions == 0  # nothing due: no connection to a mail server
    org = await new_org(ctx)
    for k in range(3):
        await create(ctx, org, f"user{k}@example.com", key=f"k{k}")
    done = await worker.run_once(ctx, mailer)
    assert (done.mail.sent, mailer.sessions) == (3, 1)

"""What one worker pass does when the IdP is misconfigured, the audit trail is kept for ever,
no throttle is configured, or there is more work than its pass limit; and what the audit listing
refuses whatever entry point asks."""

from __future__ import annotations

import base64
import json

import pytest

from accord.config import Settings
from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import OperationState
from accord.services import worker
from accord.services.audit import AuditFilter, list_audit_events
from accord.testing import FakeContext, FakeMailer, Fault, fake_context
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

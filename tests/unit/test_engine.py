"""The operation engine on doubles (accord.testing): every branch of claim, ensure, finalize,
compensation, replay and the worker, in milliseconds, with no database and no IdP.

What only PostgreSQL can prove (constraints under concurrency, SKIP LOCKED, crashes of real
processes) is proven in tests/engine, tests/worker and tests/crash; the in-memory store is held
to PostgreSQL's behaviour by tests/contracts/test_store.py.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import CredentialMode, OperationState, RecoveryPoint, Role, UserStatus
from accord.services import operations, worker
from accord.services.deprovisioning import deprovision_user
from accord.services.organizations import NewOrganization, create_organization
from accord.services.provisioning import NewUser, create_user
from accord.services.registration import Registration, register
from accord.testing import FakeContext, FakeMailer, Fault, fake_context

PLATFORM = Caller.platform("token:platform", "admin@platform.test")


@pytest.fixture
def ctx() -> FakeContext:
    return fake_context()


async def new_org(ctx: FakeContext, name: str = "Acme", max_users: int = 10) -> UUID:
    org = await create_organization(
        ctx, NewOrganization(name=name, max_users=max_users), caller=PLATFORM
    )
    return UUID(org["id"])


async def create(
    ctx: FakeContext, org: UUID, email: str = "ada@example.com", key: str | None = "k1", **kw: Any
) -> dict[str, Any]:
    return await create_user(
        ctx, NewUser(email, "Ada Lovelace", org, **kw), caller=PLATFORM, idempotency_key=key
    )


def tables(ctx: FakeContext):
    return ctx.store.tables


def only_operation(ctx: FakeContext):
    (op,) = tables(ctx).operations.values()
    return op


# -- the happy path and replay ------------------------------------------------------------------


async def test_create_claims_ensures_and_finalizes(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    result = await create(ctx, org)
    user = tables(ctx).users[UUID(result["user"]["id"])]
    assert user.status == UserStatus.PENDING and result["reused_identity"] is False
    assert (user.id, org) in tables(ctx).memberships
    assert ctx.idp.users[ctx.idp.remote_id_for(user.id)].email == "ada@example.com"
    op = only_operation(ctx)
    assert (op.state, op.recovery_point) == (OperationState.SUCCEEDED, RecoveryPoint.FINISHED)
    assert [m.dedupe_key for m in tables(ctx).outbox.values()] == [f"invitation:{op.id}"]
    actions = [e.event.action for e in tables(ctx).audit]
    assert actions[-2:] == ["create_user.started", "user.created"]


async def test_same_key_same_body_replays_without_a_second_effect(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    first = await create(ctx, org, credential=CredentialMode.TEMP_PASSWORD)
    calls = len(ctx.idp.calls)
    again = await create(ctx, org, credential=CredentialMode.TEMP_PASSWORD)
    assert again == first and first["temporary_password"]
    assert len(ctx.idp.calls) == calls and len(tables(ctx).operations) == 1


async def test_same_key_other_body_is_refused(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    await create(ctx, org)
    with pytest.raises(errors.IdempotencyKeyReused):
        await create(ctx, org, email="other@example.com")


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
async def test_malformed_keys_are_invalid_input(ctx: FakeContext, key: str) -> None:
    org = await new_org(ctx)
    with pytest.raises(errors.InvalidInput):
        await create(ctx, org, key=key)
    assert tables(ctx).operations == {}


async def test_a_short_key_is_a_valid_key(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    assert (await create(ctx, org, key="o"))["user"]["email"] == "ada@example.com"


async def test_a_refused_claim_is_stored_and_replays_its_error(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    await create(ctx, org, key="first")
    with pytest.raises(errors.EmailAlreadyExists):
        await create(ctx, org, key="second")
    refused = [o for o in tables(ctx).operations.values() if o.idempotency_key == "second"]
    assert refused[0].state == OperationState.FAILED
    assert refused[0].error["code"] == "email_exists"
    with pytest.raises(errors.EmailAlreadyExists):
        await create(ctx, org, key="second")


async def test_a_key_held_by_a_running_operation_waits_then_says_in_progress(
    ctx: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operations, "SAME_KEY_WAIT_SECONDS", 0.0)
    org = await new_org(ctx)
    ctx.idp.script("create", Fault.CRASH)
    with pytest.raises(BaseException, match="simulated crash"):
        await create(ctx, org)
    with pytest.raises(errors.OperationInProgress):  # the dead runner's lease still holds
        await create(ctx, org)


# -- seats (G5) -----------------------------------------------------------------------------------


async def test_seats_count_members_and_open_claims(ctx: FakeContext) -> None:
    org = await new_org(ctx, max_users=2)
    await create(ctx, org, email="one@example.com", key="1")
    ctx.idp.script("create", Fault.UNAVAILABLE)
    with pytest.raises(errors.OperationPending):
        await create(ctx, org, email="two@example.com", key="2")
    with pytest.raises(errors.OrganizationFull):  # the pending claim holds the second seat
        await create(ctx, org, email="three@example.com", key="3")


async def test_an_unknown_organization_is_refused_before_anything_happens(
    ctx: FakeContext,
) -> None:
    with pytest.raises(errors.OrganizationNotFound):
        await create(ctx, UUID(int=7))
    assert ctx.idp.calls == [] and tables(ctx).users == {}


async def test_an_organization_token_cannot_create_in_another_organization(
    ctx: FakeContext,
) -> None:
    mine, theirs = await new_org(ctx, "Mine"), await new_org(ctx, "Theirs")
    caller = Caller.organization("token:mine", mine)
    with pytest.raises(errors.Forbidden):
        await create_user(ctx, NewUser("ada@example.com", "Ada", theirs), caller=caller)


# -- the IdP phase --------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.UNAVAILABLE, Fault.RATE_LIMITED, Fault.TIMEOUT])
async def test_a_transient_fault_postpones_and_the_retry_finishes(
    ctx: FakeContext, fault: Fault
) -> None:
    org = await new_org(ctx)
    ctx.idp.script("create", fault)
    with pytest.raises(errors.OperationPending) as pending:
        await create(ctx, org)
    op = only_operation(ctx)
    assert op.state == OperationState.OPEN and op.lease_until is None and op.next_attempt_at
    assert pending.value.reason_code in ("idp_unavailable", "idp_outcome_unknown")
    result = await create(ctx, org)
    assert result["operation_id"] == str(op.id) and len(ctx.idp.users) == 1


async def test_a_ghost_create_is_found_again_and_counts_as_created(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    ctx.idp.script("create", Fault.GHOST)
    result = await create(ctx, org)
    assert result["reused_identity"] is False and len(ctx.idp.users) == 1
    assert only_operation(ctx).created_remote is True


async def test_an_identity_the_lookup_misses_after_a_conflict_is_retried_later(
    ctx: FakeContext,
) -> None:
    org = await new_org(ctx)
    ctx.idp.script("create", Fault.TIMEOUT)
    ctx.idp.script("find_by_email", Fault.UNAVAILABLE)  # the first lookup, before the create
    with pytest.raises(errors.OperationPending):
        await create(ctx, org)
    assert ctx.idp.users == {} and only_operation(ctx).recovery_point == RecoveryPoint.CLAIMED


async def test_an_existing_identity_is_adopted_and_never_deleted_on_failure(
    ctx: FakeContext,
) -> None:
    org = await new_org(ctx)
    await ctx.idp.create_direct("ada@example.com", "Ada Elsewhere")
    ctx.hooks.register(_failing_hook)
    with pytest.raises(errors.HookFailed):
        await create(ctx, org, adopt_existing=True)
    assert [u.email for u in ctx.idp.users.values()] == ["ada@example.com"]
    assert tables(ctx).users == {} and tables(ctx).memberships == {}


async def _failing_hook(conn: Any, user: Any) -> None:
    raise RuntimeError("the application's table is missing")


async def test_a_rejection_compensates_and_deletes_what_it_created(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    ctx.hooks.register(_failing_hook)
    with pytest.raises(errors.HookFailed):
        await create(ctx, org)
    op = only_operation(ctx)
    assert (op.state, op.error["code"]) == (OperationState.FAILED, "hook_failed")
    assert ctx.idp.users == {} and tables(ctx).users == {} and tables(ctx).outbox == {}
    assert "create_user.compensated" in [e.event.action for e in tables(ctx).audit]


async def test_a_rejected_credential_compensates(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    ctx.idp.script("update", Fault.REJECTED)
    with pytest.raises(errors.RemoteRejected):
        await create(ctx, org, credential=CredentialMode.TEMP_PASSWORD)
    assert ctx.idp.users == {} and tables(ctx).users == {}


async def test_compensation_that_cannot_reach_the_idp_waits_and_finishes_later(
    ctx: FakeContext,
) -> None:
    org = await new_org(ctx)
    ctx.idp.script("update", Fault.REJECTED)
    ctx.idp.script("delete", Fault.UNAVAILABLE)
    with pytest.raises(errors.OperationPending):
        await create(ctx, org, credential=CredentialMode.TEMP_PASSWORD)
    op = only_operation(ctx)
    assert op.recovery_point == RecoveryPoint.COMPENSATING and op.error["code"] == "idp_rejected"
    ctx.clock.advance(seconds=600)
    await worker.run_until_idle(ctx, FakeMailer())
    op = only_operation(ctx)
    assert (op.state, op.error["code"]) == (OperationState.FAILED, "idp_rejected")
    assert ctx.idp.users == {} and tables(ctx).users == {}


async def test_a_misconfigured_idp_keeps_the_operation_open(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    ctx.idp.script("find_by_email", Fault.MISCONFIGURED)
    with pytest.raises(errors.ProviderMisconfigured):
        await create(ctx, org)
    assert only_operation(ctx).state == OperationState.OPEN


async def test_the_retry_budget_ends_in_compensation(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    attempts = ctx.settings.operation_max_attempts
    ctx.idp.script("find_by_email", Fault.UNAVAILABLE, times=attempts + 5)
    with pytest.raises(errors.OperationPending):
        await create(ctx, org)
    for _ in range(attempts):
        ctx.clock.advance(seconds=600)
        await worker.run_once(ctx, FakeMailer())
    op = only_operation(ctx)  # out of attempts: compensating, itself waiting for the IdP
    assert (op.recovery_point, op.error["code"]) == (
        RecoveryPoint.COMPENSATING,
        "retry_budget_exhausted",
    )
    ctx.idp.clear_script()
    ctx.clock.advance(seconds=600)
    await worker.run_until_idle(ctx, FakeMailer())
    op = only_operation(ctx)
    assert (op.state, op.error["code"]) == (OperationState.FAILED, "retry_budget_exhausted")
    assert tables(ctx).users == {}


async def test_an_operation_past_its_deadline_is_compensated(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    ctx.idp.script("find_by_email", Fault.UNAVAILABLE)
    with pytest.raises(errors.OperationPending):
        await create(ctx, org)
    ctx.clock.advance(seconds=ctx.settings.operation_deadline_seconds + 1)
    with pytest.raises(errors.RetryBudgetExhausted):
        await create(ctx, org)


async def test_an_organization_removed_before_finalize_fails_the_operation(
    ctx: FakeContext,
) -> None:
    org = await new_org(ctx)
    ctx.idp.script("update", Fault.UNAVAILABLE)  # stop after the IdP user exists
    with pytest.raises(errors.OperationPending):
        await create(ctx, org, credential=CredentialMode.TEMP_PASSWORD)
    async with ctx.store.transaction() as tx:
        await tx.organizations.delete(org)
    with pytest.raises(errors.OrganizationNotFound):
        await create(ctx, org, credential=CredentialMode.TEMP_PASSWORD)
    assert ctx.idp.users == {} and tables(ctx).users == {}


# -- two runners ----------------------------------------------------------------------------------


async def test_a_second_runner_cannot_commit_a_phase_the_first_committed(
    ctx: FakeContext,
) -> None:
    org = await new_org(ctx)
    ctx.idp.script("update", Fault.UNAVAILABLE)
    with pytest.raises(errors.OperationPending):
        await create(ctx, org, credential=CredentialMode.TEMP_PASSWORD)
    op = only_operation(ctx)
    async with ctx.store.transaction() as tx:
        first = await tx.operations.advance(op.id, RecoveryPoint.CLAIMED, remote_id="r1")
        second = await tx.operations.advance(op.id, RecoveryPoint.IDP_ENSURED, remote_id="r2")
    assert first is not None and second is None


async def test_resume_of_a_leased_operation_is_refused(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    ctx.idp.script("create", Fault.CRASH)
    with pytest.raises(BaseException, match="simulated crash"):
        await create(ctx, org)
    op = only_operation(ctx)
    assert await operations.resume(ctx, op.id) is None  # its lease has not expired
    ctx.clock.advance(seconds=ctx.settings.operation_lease_seconds + 1)
    assert (await operations.resume(ctx, op.id))["operation_id"] == str(op.id)


# -- registration and deprovisioning ---------------------------------------------------------------


async def test_registration_makes_one_personal_organization_however_retried(
    ctx: FakeContext,
) -> None:
    request = Registration("bob@example.com", "correct horse battery", "Bob", "Bob Co")
    first = await register(ctx, request, idempotency_key="r")
    assert await register(ctx, request, idempotency_key="r") == first
    with pytest.raises(errors.EmailAlreadyExists):
        await register(ctx, request)
    (org,) = tables(ctx).organizations.values()
    assert (org.slug, org.owner_user_id) == ("bob-co", UUID(first["user"]["id"]))


async def test_registration_never_takes_over_a_foreign_identity(ctx: FakeContext) -> None:
    await ctx.idp.create_direct("bob@example.com", "Bob Elsewhere")
    with pytest.raises(errors.EmailAlreadyExists):
        await register(ctx, Registration("bob@example.com", "correct horse battery", "Bob"))
    assert tables(ctx).users == {} and tables(ctx).organizations == {}
    assert len(ctx.idp.users) == 1


async def test_deprovisioning_cuts_access_and_is_idempotent(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    user_id = (await create(ctx, org))["user"]["id"]
    await deprovision_user(ctx, user_id, caller=PLATFORM)
    again = await deprovision_user(ctx, user_id, caller=PLATFORM)
    user = tables(ctx).users[UUID(user_id)]
    assert again["status"] == "disabled" and user.status == UserStatus.DISABLED
    assert ctx.idp.users == {} and tables(ctx).memberships == {} and tables(ctx).links == {}


async def test_a_failed_recreation_leaves_the_deprovisioned_row_as_it_was(
    ctx: FakeContext,
) -> None:
    # The re-creation is a new person with a row of its own (removed when it fails); the
    # deprovisioned row is never reclaimed.
    org = await new_org(ctx)
    user_id = UUID((await create(ctx, org))["user"]["id"])
    await deprovision_user(ctx, user_id, caller=PLATFORM)
    ctx.idp.script("update", Fault.REJECTED)
    with pytest.raises(errors.RemoteRejected):
        await create(ctx, org, key="again", credential=CredentialMode.TEMP_PASSWORD)
    assert tables(ctx).users[user_id].status == UserStatus.DISABLED
    assert list(tables(ctx).users) == [user_id]
    assert tables(ctx).users[user_id].former_email == "ada@example.com"
    assert tables(ctx).memberships == {} and ctx.idp.users == {}


async def test_deprovisioning_a_user_being_provisioned_waits(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    ctx.idp.script("create", Fault.UNAVAILABLE)
    with pytest.raises(errors.OperationPending):
        await create(ctx, org)
    user_id = only_operation(ctx).user_id
    with pytest.raises(errors.OperationInProgress):
        await deprovision_user(ctx, user_id, caller=PLATFORM)


# -- the worker -----------------------------------------------------------------------------------


async def test_the_worker_finishes_postponed_operations_and_sends_their_mail(
    ctx: FakeContext,
) -> None:
    org = await new_org(ctx)
    ctx.idp.script("create", Fault.UNAVAILABLE)
    with pytest.raises(errors.OperationPending):
        await create(ctx, org, role=Role.ORG_ADMIN)
    mailer = FakeMailer()
    assert (await worker.run_once(ctx, mailer)).succeeded == 0  # not due yet
    ctx.clock.advance(seconds=600)
    done = await worker.run_until_idle(ctx, mailer)
    assert done.succeeded == 1 and [m.recipient for m in mailer.sent] == ["ada@example.com"]
    assert "set-password#token=" in mailer.sent[0].body


async def test_mail_that_fails_is_retried_later_and_sent_once(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    await create(ctx, org)
    mailer = FakeMailer(fail_next=1)
    first = await worker.run_once(ctx, mailer)
    assert (first.mail.failed, mailer.sent) == (1, [])
    ctx.clock.advance(seconds=600)
    await worker.run_until_idle(ctx, mailer)
    assert len(mailer.sent) == 1


async def test_mail_for_a_removed_user_is_dropped(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    user_id = (await create(ctx, org))["user"]["id"]
    async with ctx.store.transaction() as tx:
        await tx.users.update(UUID(user_id), status=UserStatus.DISABLED)
    mailer = FakeMailer()
    assert (await worker.run_once(ctx, mailer)).mail.skipped == 1
    assert mailer.sent == []


async def test_housekeeping_forgets_keys_past_their_lifetime(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    await create(ctx, org, credential=CredentialMode.TEMP_PASSWORD)
    ctx.clock.advance(hours=ctx.settings.idempotency_ttl_hours - 1)
    await worker.housekeeping(ctx, worker.Pass())
    assert only_operation(ctx).idempotency_key is not None  # still replays
    ctx.clock.advance(hours=2)
    result = worker.Pass()
    await worker.housekeeping(ctx, result)
    # Past the key's lifetime the finished operation is deleted, its key and secrets with it.
    assert (result.forgotten_keys, result.deleted_operations) == (1, 1)
    assert tables(ctx).operations == {}

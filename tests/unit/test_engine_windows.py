"""Two runners of one operation, the second holding a step the first has moved past: every
compare-and-set the engine makes lets exactly one of them commit a phase. The late runner's
step is the record as it read it (a runner paused on a loaded machine, its lease run out, while
a worker took the operation over and finished it)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from accord.domain import errors
from accord.domain.model import OperationState, RecoveryPoint
from accord.services import engine, worker
from accord.services.context import Step
from accord.services.hooks import Hooks, ProvisionedUser
from accord.testing import FakeContext, FakeMailer, Fault, SimulatedCrash, fake_context
from tests.unit.test_engine import create, new_org, only_operation, tables

LEASE_RUN_OUT = 600  # seconds: past any lease and backoff


def late_step(ctx: FakeContext) -> Step:
    """The operation as a runner read it now; it acts on it later."""
    return Step(copy.deepcopy(only_operation(ctx)), {})


def hooks_failing(*failures: BaseException) -> Hooks:
    """Hooks whose first calls raise ``failures`` in turn; later calls pass."""
    left = list(failures)
    hooks = Hooks()

    @hooks.register
    async def flaky(conn: Any, user: ProvisionedUser) -> None:
        if left:
            raise left.pop(0)

    return hooks


async def finished_by_a_worker(ctx: FakeContext) -> None:
    ctx.clock.advance(seconds=LEASE_RUN_OUT)
    await worker.run_until_idle(ctx, FakeMailer())


async def test_a_late_finalize_replays_what_the_other_runner_finished() -> None:
    ctx = fake_context(hooks=hooks_failing(SimulatedCrash("paused after its recovery point")))
    org = await new_org(ctx)
    with pytest.raises(SimulatedCrash):
        await create(ctx, org)
    late = late_step(ctx)
    assert late.op.recovery_point == RecoveryPoint.IDP_ENSURED
    await finished_by_a_worker(ctx)
    done = only_operation(ctx)
    assert done.state == OperationState.SUCCEEDED
    answer = await engine.drive(ctx, late)
    assert answer["user"] == done.result["user"]  # the stored answer, not a second finalize
    assert len(tables(ctx).users) == len(tables(ctx).memberships) == len(ctx.idp.users) == 1


async def test_a_late_finalize_of_an_operation_being_undone_commits_nothing() -> None:
    ctx = fake_context(
        hooks=hooks_failing(SimulatedCrash("paused"), RuntimeError("the app's table is full"))
    )
    org = await new_org(ctx)
    with pytest.raises(SimulatedCrash):
        await create(ctx, org)
    late = late_step(ctx)
    ctx.idp.script("delete", Fault.UNAVAILABLE)  # the worker's undo waits for the IdP
    await finished_by_a_worker(ctx)
    assert only_operation(ctx).recovery_point == RecoveryPoint.COMPENSATING
    with pytest.raises(errors.OperationInProgress):
        await engine.drive(ctx, late)
    assert only_operation(ctx).recovery_point == RecoveryPoint.COMPENSATING
    await finished_by_a_worker(ctx)
    op = only_operation(ctx)
    assert (op.state, op.error["code"]) == (OperationState.FAILED, "hook_failed")
    assert tables(ctx).users == {} and ctx.idp.users == {}


async def test_a_late_runner_that_fails_does_not_undo_what_the_other_finished() -> None:
    ctx = fake_context()
    org = await new_org(ctx)
    ctx.idp.script("create", Fault.UNAVAILABLE)
    with pytest.raises(errors.OperationPending):
        await create(ctx, org)
    late = late_step(ctx)
    assert late.op.recovery_point == RecoveryPoint.CLAIMED
    await finished_by_a_worker(ctx)
    ctx.idp.script("find_by_email", Fault.REJECTED)  # the late runner's lookup fails for good
    with pytest.raises(errors.OperationInProgress):
        await engine.drive(ctx, late)
    assert only_operation(ctx).state == OperationState.SUCCEEDED
    (user,) = tables(ctx).users.values()
    assert user.status == "pending" and len(ctx.idp.users) == 1  # nothing undone


async def test_a_late_compensation_records_the_undoing_once() -> None:
    ctx = fake_context(hooks=hooks_failing(RuntimeError("the app's table is full")))
    org = await new_org(ctx)
    ctx.idp.script("delete", Fault.UNAVAILABLE)
    with pytest.raises(errors.OperationPending):
        await create(ctx, org)
    late = late_step(ctx)
    assert late.op.recovery_point == RecoveryPoint.COMPENSATING
    await finished_by_a_worker(ctx)
    with pytest.raises(errors.HookFailed):  # the operation's own error, as stored
        await engine.drive(ctx, late)
    compensated = [e for e in tables(ctx).audit if e.event.action == "create_user.compensated"]
    assert len(compensated) == 1
    assert tables(ctx).users == {} and ctx.idp.users == {}

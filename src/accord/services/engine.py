"""The operation engine: drives a durable operation from its recovery point to its end.

No database transaction is ever open across an IdP call. An operation moves through recovery
points, each committed before the next phase starts, so any process can resume it from its row
alone (the Stripe idempotency-key design, with the IETF Idempotency-Key semantics on top;
requests enter through ``services/operations.py``)::

      claim (tx 1)            ensure the IdP user (no tx)         finalize (tx 3)
    ─────────────▶ CLAIMED ──────────────────────────────▶ IDP_ENSURED ─────────────▶ FINISHED
                      │          recovery point (tx 2)          │                    succeeded
                      │                                         │
                      └──── rejected / hook failed ──▶ COMPENSATING ──undo──▶ FINISHED
                                                                              failed

- A transient failure (``ProviderUnavailable``: timeout, 5xx, 429) leaves the operation open at
  its recovery point with a backoff (``next_attempt_at``) and releases the lease; the caller gets
  ``OperationPending`` (HTTP 202). A retry with the same key, or the worker, resumes it.
- A crash is the same as a transient failure, once the lease (``lease_until``) expires.
- Secrets (a registrant's password, a generated temporary password) are sealed in the
  operation. Only those the flow's ``secrets_after_idp`` names outlive the recovery point after
  the IdP call (G9: the rest are erased in its transaction); a compensation erases them all
  when it begins, and at the end only an operation with an Idempotency-Key keeps them, for its
  replays, until housekeeping forgets the key.
- Each phase is idempotent: ensuring looks the user up before creating, and a conflict or an
  unknown outcome is resolved by looking up again; every transition is a compare-and-set on the
  recovery point, so two runners never both commit one phase.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from accord.domain import errors
from accord.domain.model import OperationState, RecoveryPoint
from accord.domain.principals import audit_by
from accord.domain.records import AuditEvent, OperationRecord
from accord.domain.store import OperationChanges
from accord.services import crashpoints
from accord.services.context import Context, Flow, Step
from accord.services.crashpoints import CrashPoint

RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 300.0

# Failures that end an operation; anything else (a bug, a crash) leaves it to resume.
FAILURES = (
    errors.RemoteRejected,
    errors.RemoteConflict,
    errors.HookFailed,
    errors.EmailAlreadyExists,
    errors.IdentityExists,
    errors.OrganizationNotFound,
    errors.OrganizationFull,
    errors.UserNotFound,  # the subject was deprovisioned while a change of it ran
)


async def drive(accord: Context, step: Step) -> dict[str, Any]:
    """Run the operation from its recovery point to the end (or to a transient stop)."""
    flow = accord.flow(step.op.kind)
    if gives_up(accord, step.op):
        budget = errors.RetryBudgetExhausted(
            f"Gave up after {step.op.attempts - 1} attempts: "
            f"{(step.op.error or {}).get('message', 'the identity provider was unavailable')}"
        )
        step = await _begin_compensation(accord, step, budget)
        return await _compensate(accord, flow, step)
    try:
        if step.op.recovery_point == RecoveryPoint.CLAIMED:
            step = await _ensure(accord, flow, step)
        if step.op.recovery_point == RecoveryPoint.IDP_ENSURED:
            return await _finalize(accord, flow, step)
    except errors.ProviderUnavailable as transient:
        await _postpone(accord, step.op, transient, progress=step.progress)
        raise pending(step.op, transient) from None
    except errors.ProviderMisconfigured as broken:
        await _postpone(accord, step.op, broken, progress=step.progress)
        raise
    except FAILURES as failure:
        step = await _begin_compensation(accord, step, failure)
    return await _compensate(accord, flow, step)


def gives_up(accord: Context, op: OperationRecord) -> bool:
    """Whether ``drive`` gives the operation up instead of resuming it: it is not being undone
    already, and it has used up its attempts or outlived its deadline. The set-wise resume
    (services/bulk_resume.py) takes only operations this says no to."""
    if op.recovery_point == RecoveryPoint.COMPENSATING:
        return False
    settings = accord.settings
    return op.attempts > settings.operation_max_attempts or accord.clock.now() > op.deadline_at


async def _ensure(accord: Context, flow: Flow, step: Step) -> Step:
    changes = await flow.ensure_remote(accord, step)
    crashpoints.reach(accord.settings, CrashPoint.IDP_ANSWERED)
    changes["recovery_point"] = RecoveryPoint.IDP_ENSURED
    kept = flow.secrets_after_idp(step.secrets)
    if kept != step.secrets:  # G9: the IdP has the password now; erase it with this commit
        changes["sealed_secrets"] = accord.sealer.seal(kept) if kept else None
    async with accord.store.statement() as tx:
        op = await tx.operations.advance(step.op.id, RecoveryPoint.CLAIMED, **changes)
    if op is None:
        raise errors.OperationInProgress(in_progress_message(step.op))
    crashpoints.reach(accord.settings, CrashPoint.AFTER_RECOVERY_POINT)
    return Step(op, step.secrets)


async def _finalize(accord: Context, flow: Flow, step: Step) -> dict[str, Any]:
    async with accord.store.transaction() as tx:
        op = await tx.operations.get(step.op.id, lock=True)
        if op is not None and op.is_terminal:  # another runner finished it meanwhile
            return replay(accord, op)
        if op is None or op.recovery_point != RecoveryPoint.IDP_ENSURED:
            raise errors.OperationInProgress(in_progress_message(step.op))
        result = {
            "operation_id": str(op.id),
            **await flow.finalize(tx, accord, Step(op, step.secrets)),
        }
        await tx.operations.advance(
            op.id,
            RecoveryPoint.IDP_ENSURED,
            recovery_point=RecoveryPoint.FINISHED,
            state=OperationState.SUCCEEDED,
            result=result,
            lease_until=None,
            error=None,
            # Kept secrets serve only a replay by key (until housekeeping forgets the key).
            sealed_secrets=op.sealed_secrets if op.idempotency_key else None,
        )
        crashpoints.reach(accord.settings, CrashPoint.BEFORE_FINALIZE_COMMIT)
    crashpoints.reach(accord.settings, CrashPoint.AFTER_COMMIT)
    return flow.public_result(result, step.secrets)


async def _begin_compensation(accord: Context, step: Step, failure: errors.AccordError) -> Step:
    async with accord.store.transaction() as tx:
        op = await tx.operations.advance(
            step.op.id,
            (RecoveryPoint.CLAIMED, RecoveryPoint.IDP_ENSURED),
            recovery_point=RecoveryPoint.COMPENSATING,
            error=failure.as_dict(),
            sealed_secrets=None,  # undoing needs no secret (G9)
        )
    if op is None:
        raise errors.OperationInProgress(in_progress_message(step.op))
    return Step(op, step.secrets)


async def _compensate(accord: Context, flow: Flow, step: Step) -> dict[str, Any]:
    """Undo the operation's effects (G7) and mark it failed; raise its error."""
    try:
        deleted_remote = await flow.undo_remote(accord, step)
    except errors.ProviderUnavailable as transient:
        await _postpone(accord, step.op, transient)
        raise pending(step.op, transient) from None
    crashpoints.reach(accord.settings, CrashPoint.UNDO_ANSWERED)
    async with accord.store.transaction() as tx:
        await flow.undo_claim(tx, accord, step)
        op = await tx.operations.advance(
            step.op.id,
            RecoveryPoint.COMPENSATING,
            recovery_point=RecoveryPoint.FINISHED,
            state=OperationState.FAILED,
            lease_until=None,
            sealed_secrets=None,
        )
        if op is not None:
            await tx.audit.record(
                AuditEvent(
                    **audit_by(step.op.request),
                    action=f"{step.op.kind}.compensated",
                    operation_id=op.id,
                    subject_user_id=op.user_id,
                    organization_id=op.organization_id,
                    subject_email=op.request.get("email"),
                    data={"error": step.op.error, "deleted_remote": deleted_remote},
                )
            )
        crashpoints.reach(accord.settings, CrashPoint.BEFORE_COMPENSATION_COMMIT)
    raise stored_error(step.op.error or {})


async def _postpone(
    accord: Context,
    op: OperationRecord,
    cause: errors.AccordError,
    *,
    progress: dict[str, Any] | None = None,
) -> None:
    """Release the lease and schedule the next attempt with exponential backoff and jitter;
    keep the ``progress`` of an IdP phase stopped part-way (``Step.progress``)."""
    delay = backoff_seconds(op.attempts, getattr(cause, "retry_after", None))
    changes: OperationChanges = {
        "lease_until": None,
        "next_attempt_at": accord.clock.now() + timedelta(seconds=delay),
    }
    if progress is not None:
        changes["flow_state"] = progress
    if op.recovery_point != RecoveryPoint.COMPENSATING:
        # While compensating, ``error`` keeps the failure being undone: that is the answer.
        changes["error"] = cause.as_dict()
    async with accord.store.statement() as tx:
        await tx.operations.advance(op.id, op.recovery_point, **changes)


# Jitter from a generator of our own: the process-wide ``random`` state belongs to the
# application embedding accord (and to property-based tests, which check it is left alone).
_jitter = random.Random()


def backoff_seconds(attempts: int, floor: float | None = None) -> float:
    """Exponential backoff with jitter: 1 s, 2 s, 4 s ... up to 5 minutes, each times [0.5, 1)."""
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2.0 ** max(attempts - 1, 0))
    return max(floor or 0.0, ceiling * _jitter.uniform(0.5, 1.0))


def pending(op: OperationRecord, cause: errors.AccordError) -> errors.OperationPending:
    """What the caller of an operation that waits for the IdP is told."""
    retry_after = max(1.0, getattr(cause, "retry_after", None) or 1.0)
    return errors.OperationPending(
        str(op.id),
        retry_after,
        "The identity provider is unavailable; the operation continues in the background. "
        f"Check /api/operations/{op.id}, or retry with the same Idempotency-Key.",
        reason_code=cause.code,
    )


def in_progress_message(op: OperationRecord) -> str:
    return (
        f"Operation {op.id} with this Idempotency-Key is still running; "
        "retry later with the same key."
    )


def replay(accord: Context, op: OperationRecord) -> dict[str, Any]:
    """The stored outcome of a finished operation: its result, or its error raised again."""
    if op.state == OperationState.SUCCEEDED:
        return accord.flow(op.kind).public_result(op.result or {}, open_secrets(accord, op))
    raise stored_error(op.error or {})


def stored_error(error: dict[str, Any]) -> errors.AccordError:
    """The error a stored error document describes, as its own class."""
    cls = errors.error_codes().get(error.get("code", ""), errors.AccordError)
    instance = cls(error.get("message"))
    instance.details = error.get("details") or {}
    return instance


async def leased_step(accord: Context, op: OperationRecord) -> Step:
    """The step of an operation this runner just leased, its secrets opened. A process with the
    wrong ``ACCORD_SECRET_KEY`` cannot open them: it gives the lease back, with the attempt it
    counted (the operation is not at fault), and raises ``ConfigurationError``."""
    try:
        return Step(op, open_secrets(accord, op))
    except errors.ConfigurationError:
        async with accord.store.transaction() as tx:
            await tx.operations.release_lease(op.id)
        raise


def open_secrets(accord: Context, op: OperationRecord) -> dict[str, Any]:
    return accord.sealer.open(op.sealed_secrets) if op.sealed_secrets else {}

"""The operation protocol: every use case that touches the IdP runs as a durable operation.

No database transaction is ever open across an IdP call. An operation moves through recovery
points, each committed before the next phase starts, so any process can resume it from its row
alone (the Stripe idempotency-key design, with the IETF Idempotency-Key semantics on top)::

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
- Each phase is idempotent: ensuring looks the user up before creating, and a conflict or an
  unknown outcome is resolved by looking up again; every transition is a compare-and-set on the
  recovery point, so two runners never both commit one phase.
- A claim that fails (``email_exists``, ``organization_full``, ...) is stored as a failed
  operation, so a retry with the same key gets the same answer.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db import operations as store
from accord.adapters.db import repository
from accord.adapters.db.operations import OperationRecord
from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import OperationKind, OperationState, RecoveryPoint
from accord.services import crashpoints
from accord.services.crashpoints import CrashPoint

if TYPE_CHECKING:
    from accord.bootstrap import Accord

MAX_KEY_LENGTH = 255
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 300.0
# How long a request waits for another request with the same key to finish before answering
# ``operation_in_progress``.
SAME_KEY_WAIT_SECONDS = 10.0


@dataclass
class Step:
    """What a phase hands to the next: the record as committed, and the opened secrets."""

    op: OperationRecord
    secrets: dict[str, Any]


class Flow(ABC):
    """One kind of operation: its claim, its IdP phase, its finalize and its undo."""

    kind: ClassVar[OperationKind]

    @abstractmethod
    async def claim(self, conn: AsyncConnection, accord: Accord, step: Step) -> dict[str, Any]:
        """Inside transaction 1: reserve what the operation needs (raise a domain error to
        refuse). Returns columns to set on the operation (user_id, organization_id, flow_state)."""

    @abstractmethod
    async def ensure_remote(self, accord: Accord, step: Step) -> dict[str, Any]:
        """Outside any transaction: bring the IdP to the wanted state. Returns columns for the
        recovery point (remote_id, created_remote, flow_state)."""

    @abstractmethod
    async def finalize(self, conn: AsyncConnection, accord: Accord, step: Step) -> dict[str, Any]:
        """Inside transaction 3: make the result true in the database; return the result."""

    async def undo_remote(self, accord: Accord, step: Step) -> bool:
        """Outside any transaction: remove from the IdP what this operation created; say if
        anything was.

        Its recovery point may not say (the create succeeded, then a later call in the same
        phase failed, or the process died): then an identity carrying this operation's user id
        is the one it created. One it adopted carries another id and is never touched.
        """
        op = step.op
        remote_id = op.remote_id if op.created_remote else None
        if remote_id is None and op.user_id is not None and op.request.get("email"):
            found = await accord.idp.find_by_email(op.request["email"])
            if found is not None and found.accord_user_id == str(op.user_id):
                remote_id = found.remote_id
        if remote_id:
            await accord.idp.delete(remote_id)
        return remote_id is not None

    @abstractmethod
    async def undo_claim(self, conn: AsyncConnection, accord: Accord, step: Step) -> None:
        """Inside the compensating transaction: remove what the claim reserved."""

    def public_result(self, result: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
        """The stored result as returned to the caller (secrets added back, where any)."""
        return result


FLOWS: dict[OperationKind, Flow] = {}


def register_flow(flow: Flow) -> Flow:
    FLOWS[flow.kind] = flow
    return flow


# -- entry: a new request ----------------------------------------------------------------------


def check_idempotency_key(key: str | None) -> None:
    if key is not None and not (0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()):
        raise errors.InvalidInput(
            f"The Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters."
        )


async def execute(
    accord: Accord,
    kind: OperationKind,
    *,
    caller: Caller,
    idempotency_key: str | None,
    request: dict[str, Any],
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run a new operation of ``kind`` to its end, or rejoin the one this key started."""
    check_idempotency_key(idempotency_key)
    secrets = secrets or {}
    digest = accord.sealer.fingerprint({"kind": kind, "request": request, "secrets": secrets})
    if idempotency_key is not None:
        async with accord.db.transaction() as conn:
            existing = await store.find_by_key(conn, caller.key, idempotency_key)
        if existing is not None:
            return await _rejoin(accord, existing, digest)
    try:
        step = await _claim(accord, kind, caller, idempotency_key, digest, request, secrets)
    except errors.OperationInProgress:  # a concurrent request with this key claimed first
        async with accord.db.transaction() as conn:
            existing = await store.find_by_key(conn, caller.key, idempotency_key or "")
        if existing is None:
            raise
        return await _rejoin(accord, existing, digest)
    return await drive(accord, step)


async def _claim(
    accord: Accord,
    kind: OperationKind,
    caller: Caller,
    key: str | None,
    digest: str,
    request: dict[str, Any],
    secrets: dict[str, Any],
) -> Step:
    settings = accord.settings
    row = {
        "id": uuid.uuid4(),
        "kind": kind,
        "caller": caller.key,
        "idempotency_key": key,
        "request_digest": digest,
        "request": {**request, "actor": caller.actor},
        "sealed_secrets": accord.sealer.seal(secrets) if secrets else None,
        "state": OperationState.OPEN,
        "recovery_point": RecoveryPoint.CLAIMED,
        "deadline_at": _now() + timedelta(seconds=settings.operation_deadline_seconds),
        "lease_until": _now() + timedelta(seconds=settings.operation_lease_seconds),
        "attempts": 1,
    }
    try:
        async with accord.db.transaction() as conn:
            op = await store.insert_operation(conn, **row)
            claimed = await FLOWS[kind].claim(conn, accord, Step(op, secrets))
            op = await store.advance(conn, op.id, RecoveryPoint.CLAIMED, **claimed)
            assert op is not None
            await repository.record_audit(
                conn,
                actor=caller.actor,
                action=f"{kind}.started",
                operation_id=op.id,
                subject_user_id=op.user_id,
                organization_id=op.organization_id,
                subject_email=request.get("email"),
            )
    except errors.OperationInProgress:
        raise
    except errors.AccordError as refusal:
        await _record_refusal(accord, row, refusal)
        raise
    crashpoints.reach(accord, CrashPoint.AFTER_CLAIM)
    return Step(op, secrets)


async def _record_refusal(accord: Accord, row: dict[str, Any], refusal: errors.AccordError) -> None:
    """Store a refused claim as a failed operation, so a retry with its key gets the same."""
    failed = {
        **row,
        "state": OperationState.FAILED,
        "recovery_point": RecoveryPoint.FINISHED,
        "lease_until": None,
        "sealed_secrets": None,
        "error": refusal.as_dict(),
    }
    try:
        async with accord.db.transaction() as conn:
            await store.insert_operation(conn, **failed)
            await repository.record_audit(
                conn,
                actor=row["request"]["actor"],
                action=f"{row['kind']}.refused",
                operation_id=row["id"],
                subject_email=row["request"].get("email"),
                data={"code": refusal.code},
            )
    except errors.OperationInProgress:
        pass  # the same key won a concurrent race: its answer is the one to keep


async def _rejoin(accord: Accord, op: OperationRecord, digest: str) -> dict[str, Any]:
    """Answer a retry: replay a finished operation, resume an idle one, or wait for a busy one."""
    if op.request_digest != digest:
        raise errors.IdempotencyKeyReused(
            "This Idempotency-Key was used for a different request; "
            "use a new key for a new request."
        )
    deadline = asyncio.get_running_loop().time() + SAME_KEY_WAIT_SECONDS
    pause = 0.02
    while True:
        if op.is_terminal:
            return replay(accord, op)
        async with accord.db.transaction() as conn:
            leased = await store.take_lease(conn, op.id, accord.settings.operation_lease_seconds)
        if leased is not None:
            return await drive(accord, Step(leased, _open_secrets(accord, leased)))
        if asyncio.get_running_loop().time() >= deadline:
            raise errors.OperationInProgress(details_op(op))
        await asyncio.sleep(pause)  # another process holds the lease: poll for its outcome
        pause = min(pause * 2, 0.5)
        async with accord.db.transaction() as conn:
            op = await store.get(conn, op.id) or op


def details_op(op: OperationRecord) -> str:
    return (
        f"Operation {op.id} with this Idempotency-Key is still running; "
        "retry later with the same key."
    )


def replay(accord: Accord, op: OperationRecord) -> dict[str, Any]:
    """The stored outcome of a finished operation: its result, or its error raised again."""
    if op.state == OperationState.SUCCEEDED:
        return FLOWS[op.kind].public_result(op.result or {}, _open_secrets(accord, op))
    raise stored_error(op.error or {})


def stored_error(error: dict[str, Any]) -> errors.AccordError:
    cls = errors.error_codes().get(error.get("code", ""), errors.AccordError)
    instance = cls(error.get("message"))
    instance.details = error.get("details") or {}
    return instance


def _open_secrets(accord: Accord, op: OperationRecord) -> dict[str, Any]:
    return accord.sealer.open(op.sealed_secrets) if op.sealed_secrets else {}


# -- running an operation that we hold the lease of ---------------------------------------------


async def resume(accord: Accord, operation_id: UUID) -> dict[str, Any] | None:
    """Take the lease of an idle open operation and run it on; None if someone else has it."""
    async with accord.db.transaction() as conn:
        leased = await store.take_lease(conn, operation_id, accord.settings.operation_lease_seconds)
    if leased is None:
        return None
    return await drive(accord, Step(leased, _open_secrets(accord, leased)))


async def drive(accord: Accord, step: Step) -> dict[str, Any]:
    """Run the operation from its recovery point to the end (or to a transient stop)."""
    flow = FLOWS[step.op.kind]
    if step.op.recovery_point != RecoveryPoint.COMPENSATING and _exhausted(accord, step.op):
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
        await _postpone(accord, step.op, transient)
        raise _pending(step.op, transient) from None
    except errors.ProviderMisconfigured as broken:
        await _postpone(accord, step.op, broken)
        raise
    except _FAILURES as failure:
        step = await _begin_compensation(accord, step, failure)
    return await _compensate(accord, flow, step)


# Failures that end an operation; anything else (a bug, a crash) leaves it to resume.
_FAILURES = (
    errors.RemoteRejected,
    errors.RemoteConflict,
    errors.HookFailed,
    errors.EmailAlreadyExists,
    errors.OrganizationNotFound,
    errors.OrganizationFull,
)


def _exhausted(accord: Accord, op: OperationRecord) -> bool:
    """Whether the operation has used up its attempts or outlived its deadline."""
    return op.attempts > accord.settings.operation_max_attempts or _now() > op.deadline_at


async def _ensure(accord: Accord, flow: Flow, step: Step) -> Step:
    changes = await flow.ensure_remote(accord, step)
    crashpoints.reach(accord, CrashPoint.IDP_ANSWERED)
    async with accord.db.transaction() as conn:
        op = await store.advance(
            conn,
            step.op.id,
            RecoveryPoint.CLAIMED,
            recovery_point=RecoveryPoint.IDP_ENSURED,
            **changes,
        )
    if op is None:
        raise errors.OperationInProgress(details_op(step.op))
    crashpoints.reach(accord, CrashPoint.AFTER_RECOVERY_POINT)
    return Step(op, step.secrets)


async def _finalize(accord: Accord, flow: Flow, step: Step) -> dict[str, Any]:
    async with accord.db.transaction() as conn:
        op = await store.get(conn, step.op.id, lock=True)
        if op is not None and op.is_terminal:  # another runner finished it meanwhile
            return replay(accord, op)
        if op is None or op.recovery_point != RecoveryPoint.IDP_ENSURED:
            raise errors.OperationInProgress(details_op(step.op))
        result = {
            "operation_id": str(op.id),
            **await flow.finalize(conn, accord, Step(op, step.secrets)),
        }
        await store.advance(
            conn,
            op.id,
            RecoveryPoint.IDP_ENSURED,
            recovery_point=RecoveryPoint.FINISHED,
            state=OperationState.SUCCEEDED,
            result=result,
            lease_until=None,
            error=None,
        )
        crashpoints.reach(accord, CrashPoint.BEFORE_FINALIZE_COMMIT)
    crashpoints.reach(accord, CrashPoint.AFTER_COMMIT)
    return flow.public_result(result, step.secrets)


async def _begin_compensation(accord: Accord, step: Step, failure: errors.AccordError) -> Step:
    async with accord.db.transaction() as conn:
        op = await store.advance(
            conn,
            step.op.id,
            (RecoveryPoint.CLAIMED, RecoveryPoint.IDP_ENSURED),
            recovery_point=RecoveryPoint.COMPENSATING,
            error=failure.as_dict(),
        )
    if op is None:
        raise errors.OperationInProgress(details_op(step.op))
    return Step(op, step.secrets)


async def _compensate(accord: Accord, flow: Flow, step: Step) -> dict[str, Any]:
    """Undo the operation's effects (G7) and mark it failed; raise its error."""
    try:
        deleted_remote = await flow.undo_remote(accord, step)
    except errors.ProviderUnavailable as transient:
        await _postpone(accord, step.op, transient)
        raise _pending(step.op, transient) from None
    async with accord.db.transaction() as conn:
        await flow.undo_claim(conn, accord, step)
        op = await store.advance(
            conn,
            step.op.id,
            RecoveryPoint.COMPENSATING,
            recovery_point=RecoveryPoint.FINISHED,
            state=OperationState.FAILED,
            lease_until=None,
            sealed_secrets=None,
        )
        if op is not None:
            await repository.record_audit(
                conn,
                actor=step.op.request.get("actor", "accord"),
                action=f"{step.op.kind}.compensated",
                operation_id=op.id,
                subject_user_id=op.user_id,
                organization_id=op.organization_id,
                subject_email=op.request.get("email"),
                data={"error": step.op.error, "deleted_remote": deleted_remote},
            )
    raise stored_error(step.op.error or {})


async def _postpone(accord: Accord, op: OperationRecord, cause: errors.AccordError) -> None:
    """Release the lease and schedule the next attempt with exponential backoff and jitter."""
    delay = backoff_seconds(op.attempts, getattr(cause, "retry_after", None))
    # While compensating, ``error`` keeps the failure being undone: that is the answer.
    last_error = (
        {} if op.recovery_point == RecoveryPoint.COMPENSATING else {"error": cause.as_dict()}
    )
    async with accord.db.transaction() as conn:
        await store.advance(
            conn,
            op.id,
            op.recovery_point,
            lease_until=None,
            next_attempt_at=_now() + timedelta(seconds=delay),
            **last_error,
        )


# Jitter from a generator of our own: the process-wide ``random`` state belongs to the
# application embedding accord (and to property-based tests, which check it is left alone).
_jitter = random.Random()


def backoff_seconds(attempts: int, floor: float | None = None) -> float:
    """Exponential backoff with jitter: 1 s, 2 s, 4 s ... up to 5 minutes, each times [0.5, 1)."""
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return max(floor or 0.0, ceiling * _jitter.uniform(0.5, 1.0))


def _pending(op: OperationRecord, cause: errors.AccordError) -> errors.OperationPending:
    retry_after = max(1.0, getattr(cause, "retry_after", None) or 1.0)
    return errors.OperationPending(
        str(op.id),
        retry_after,
        "The identity provider is unavailable; the operation continues in the background. "
        f"Check /api/operations/{op.id}, or retry with the same Idempotency-Key.",
    )


def _now() -> datetime:
    return datetime.now(UTC)


# -- reading -------------------------------------------------------------------------------------


async def get_operation(
    accord: Accord, operation_id: str | UUID, *, caller: Caller
) -> dict[str, Any]:
    """An operation's state as its caller (or a platform caller) may see it; never its secrets."""
    from accord.services.directory import parse_id

    op_id = parse_id(operation_id, "The operation id")
    async with accord.db.transaction() as conn:
        op = await store.get(conn, op_id)
    if op is None or not (caller.is_platform or op.caller == caller.key):
        raise errors.OperationNotFound(f"No operation {op_id}.")
    view = {
        "id": str(op.id),
        "kind": op.kind.value,
        "state": op.state.value,
        "recovery_point": op.recovery_point.value,
        "attempts": op.attempts,
        "next_attempt_at": op.next_attempt_at,
        "created_at": op.created_at,
        "updated_at": op.updated_at,
        "error": op.error,
        "user_id": str(op.user_id) if op.user_id else None,
        "organization_id": str(op.organization_id) if op.organization_id else None,
    }
    if op.state == OperationState.SUCCEEDED:
        view["result"] = op.result  # stored without secrets: a temporary password is not here
    return view

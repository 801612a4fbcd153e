"""Requests that become durable operations: claim a new one, or rejoin the one a key started.

Every use case that touches the IdP calls ``execute``; ``services/engine.py`` (whose docstring
holds the state machine) runs it from there. The Idempotency-Key semantics (IETF draft):

- a key follows ``domain/idempotency.py``'s rule (1 to 255 visible characters), scoped to its
  caller;
- the same key with the same request replays the stored answer (a failure included), or
  resumes the operation if it is idle, or waits up to ``SAME_KEY_WAIT_SECONDS`` for the runner
  that holds it (then ``operation_in_progress``);
- the same key with another request is ``idempotency_key_reused``;
- a claim that is refused (``email_exists``, ``organization_full``, ``user_not_found``, ...) is
  stored as a failed operation only when it carried a key, so a retry with that key gets the
  same answer; without a key a refusal stores nothing (no operation, no audit event), so
  refused requests cost no rows however many a stranger sends.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypedDict, cast
from uuid import UUID

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.idempotency import check_idempotency_key
from accord.domain.model import OperationKind, OperationState, RecoveryPoint
from accord.domain.principals import audit_by
from accord.domain.records import AuditEvent, NewOperation, OperationRecord
from accord.domain.store import OperationChanges
from accord.services import crashpoints
from accord.services.context import Context, Step
from accord.services.crashpoints import CrashPoint
from accord.services.engine import drive, in_progress_message, leased_step, replay
from accord.services.ids import parse_id

# How long a request waits for another request with the same key to finish before answering
# ``operation_in_progress``.
SAME_KEY_WAIT_SECONDS = 10.0
CLAIM_ATTEMPTS = 3  # runs of a claim's transaction, at most, while it collides with others


class OperationSubject(TypedDict, total=False):
    """The user and organization an operation's row names from its insert on."""

    user_id: UUID
    organization_id: UUID


_SUBJECT = tuple(OperationSubject.__annotations__)


async def execute(
    accord: Context,
    kind: OperationKind,
    *,
    caller: Caller,
    idempotency_key: str | None,
    request: dict[str, Any],
    secrets: dict[str, Any] | None = None,
    subject: OperationSubject | None = None,
) -> dict[str, Any]:
    """Run a new operation of ``kind`` to its end, or rejoin the one this key started.

    ``subject``: the user and organization the operation's row names from its insert on (a
    create's new user, its id chosen before the claim), where the flow knows them up front."""
    check_idempotency_key(idempotency_key)
    secrets = secrets or {}
    document = {"kind": kind, "request": request, "secrets": secrets}
    digest = accord.sealer.fingerprint(document)
    new = _new_operation(accord, kind, caller, idempotency_key, digest, request, secrets)
    if subject is not None:
        new = replace(new, **subject)
    try:
        # No look-up by key first: the claim's first statement inserts the operation, and the
        # key's unique constraint refuses it when the key is taken. A retry pays for one
        # refused insert; every new request saves a transaction (issue 12).
        step = await _claim(accord, new, caller, secrets)
    except errors.OperationInProgress:  # an earlier or concurrent request has this key
        existing = await _find_by_key(accord, caller, idempotency_key or "")
        if existing is None:
            raise
        return await _rejoin(accord, existing, document)
    return await drive(accord, step)


def new_operation(
    accord: Context,
    kind: OperationKind,
    *,
    caller: Caller,
    idempotency_key: str,
    request: dict[str, Any],
) -> NewOperation:
    """The operation ``execute`` would insert for this request (no secrets): set-wise
    creation inserts many at once, and a later ``execute`` with the key rejoins each."""
    check_idempotency_key(idempotency_key)
    digest = accord.sealer.fingerprint({"kind": kind, "request": request, "secrets": {}})
    return _new_operation(accord, kind, caller, idempotency_key, digest, request, {})


def same_request(
    accord: Context, kind: OperationKind, digest: str, request: dict[str, Any]
) -> bool:
    """Whether a stored operation's digest is that of this request (no secrets)."""
    return accord.sealer.matches(digest, {"kind": kind, "request": request, "secrets": {}})


async def _find_by_key(accord: Context, caller: Caller, key: str) -> OperationRecord | None:
    async with accord.store.transaction() as tx:
        return await tx.operations.find_by_key(caller.key, key)


def _new_operation(
    accord: Context,
    kind: OperationKind,
    caller: Caller,
    key: str | None,
    digest: str,
    request: dict[str, Any],
    secrets: dict[str, Any],
) -> NewOperation:
    settings, now = accord.settings, accord.clock.now()
    return NewOperation(
        id=uuid.uuid4(),
        kind=kind,
        caller=caller.key,
        idempotency_key=key,
        request_digest=digest,
        request={**request, **caller.operation_fields()},
        sealed_secrets=accord.sealer.seal(secrets) if secrets else None,
        state=OperationState.OPEN,
        recovery_point=RecoveryPoint.CLAIMED,
        deadline_at=now + timedelta(seconds=settings.operation_deadline_seconds),
        lease_until=now + timedelta(seconds=settings.operation_lease_seconds),
    )


async def _claim(
    accord: Context, new: NewOperation, caller: Caller, secrets: dict[str, Any]
) -> Step:
    try:
        advanced = await _claim_transaction(accord, new, caller, secrets)
    except (errors.OperationInProgress, errors.StorageUnavailable):
        raise  # "retry later": the same key must run the operation then, not replay this
    except errors.AccordError as refusal:
        if new.idempotency_key is not None:  # only a key can replay it: keep nothing otherwise
            await _record_refusal(accord, new, refusal)
        raise
    crashpoints.reach(accord.settings, CrashPoint.AFTER_CLAIM)
    return Step(advanced, secrets)


async def _claim_transaction(
    accord: Context, new: NewOperation, caller: Caller, secrets: dict[str, Any]
) -> OperationRecord:
    """The claim's one transaction, run again when it collided with another
    (``TransactionConflict``: PostgreSQL rolled it back whole, so nothing of it is left; a
    flow's claim may also raise it itself rather than take a lock out of order). The last
    attempt's collision reaches the caller as a retryable 503."""
    for _ in range(CLAIM_ATTEMPTS - 1):
        try:
            return await _claim_once(accord, new, caller, secrets)
        except errors.TransactionConflict:
            continue
    return await _claim_once(accord, new, caller, secrets)


async def _claim_once(
    accord: Context, new: NewOperation, caller: Caller, secrets: dict[str, Any]
) -> OperationRecord:
    async with accord.store.transaction() as tx:
        op = await tx.operations.insert(new)
        flow, step = accord.flow(new.kind), Step(op, secrets)
        claimed = _unwritten(op, await flow.claim(tx, accord, step))
        advanced = (
            await tx.operations.advance(op.id, RecoveryPoint.CLAIMED, **claimed) if claimed else op
        )
        assert advanced is not None
        await tx.audit.record(
            AuditEvent(
                **caller.audit_fields(),
                action=f"{new.kind}.started",
                operation_id=op.id,
                subject_user_id=advanced.user_id,
                organization_id=advanced.organization_id,
                subject_email=new.request.get("email"),
            )
        )
        await flow.claim_last(tx, accord, step)
    return advanced


def _unwritten(op: OperationRecord, claimed: OperationChanges) -> OperationChanges:
    """The claim's changes that its insert did not write already (the subject it was given)."""
    unwritten = dict(claimed)
    for column in _SUBJECT:
        if column in unwritten and unwritten[column] == getattr(op, column):
            del unwritten[column]
    return cast(OperationChanges, unwritten)


async def _record_refusal(accord: Context, new: NewOperation, refusal: errors.AccordError) -> None:
    """Store a refused claim as a failed operation, so a retry with its key gets the same."""
    failed = replace(
        new,
        user_id=None,  # the refused claim wrote no user: the operation names none
        organization_id=None,
        state=OperationState.FAILED,
        recovery_point=RecoveryPoint.FINISHED,
        lease_until=None,
        sealed_secrets=None,
        error=refusal.as_dict(),
    )
    try:
        async with accord.store.transaction() as tx:
            await tx.operations.insert(failed)
            await tx.audit.record(
                AuditEvent(
                    **audit_by(new.request),
                    action=f"{new.kind}.refused",
                    operation_id=new.id,
                    subject_email=new.request.get("email"),
                    data={"code": refusal.code},
                )
            )
    except errors.OperationInProgress:
        pass  # the same key won a concurrent race: its answer is the one to keep


async def _rejoin(accord: Context, op: OperationRecord, document: dict[str, Any]) -> dict[str, Any]:
    """Answer a retry: replay a finished operation, resume an idle one, or wait for a busy one.

    A process whose ``ACCORD_SECRET_KEY`` is not the one that started the operation answers
    ``ConfigurationError`` and leaves the operation as it was (no attempt spent)."""
    if not accord.sealer.matches(op.request_digest, document):
        raise errors.IdempotencyKeyReused(
            "This Idempotency-Key was used for a different request; "
            "use a new key for a new request."
        )
    deadline = asyncio.get_running_loop().time() + SAME_KEY_WAIT_SECONDS
    pause = 0.02
    while True:
        if op.is_terminal:
            return replay(accord, op)
        leased = await _take_lease(accord, op.id)
        if leased is not None:
            return await drive(accord, await leased_step(accord, leased))
        if asyncio.get_running_loop().time() >= deadline:
            raise errors.OperationInProgress(in_progress_message(op))
        await asyncio.sleep(pause)  # another process holds the lease: poll for its outcome
        pause = min(pause * 2, 0.5)
        async with accord.store.transaction() as tx:
            op = await tx.operations.get(op.id) or op


async def _take_lease(accord: Context, operation_id: UUID) -> OperationRecord | None:
    async with accord.store.transaction() as tx:
        return await tx.operations.take_lease(operation_id, accord.settings.operation_lease_seconds)


async def resume(accord: Context, operation_id: UUID) -> dict[str, Any] | None:
    """Take the lease of an idle open operation and run it on; None if someone else has it."""
    leased = await _take_lease(accord, operation_id)
    if leased is None:
        return None
    return await drive(accord, await leased_step(accord, leased))


async def get_operation(
    accord: Context, operation_id: str | UUID, *, caller: Caller
) -> dict[str, Any]:
    """An operation's state as its caller (or a platform caller) may see it; never its secrets."""
    op_id = parse_id(operation_id, "The operation id")
    async with accord.store.transaction() as tx:
        op = await tx.operations.get(op_id)
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

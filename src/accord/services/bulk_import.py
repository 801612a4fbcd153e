"""Set-wise creation for ``accord import`` (issue 12): many rows per statement, three
transactions per batch, the IdP's bulk create where it has one.

A batch writes exactly what the per-row engine (``CreateUser``) writes at each of its recovery
points, only for many operations at once:

1. claim (one transaction): the user rows (``provisioning``) and the operations (open at
   ``claimed``, leased, keyed ``import:<sha>``), then the seat count under the organization's
   lock (G5: the claims that do not fit are taken back and go the per-row way, which answers
   ``organization_full``), and the ``create_user.started`` audit records;
2. the IdP (no transaction): one bulk create (``CreatesMany``), then the recovery point
   ``idp_ensured`` of every operation whose identity it made;
3. finalize (one transaction): links, users ``pending``, memberships, extension hooks (per
   user), ``user.created`` audit records with their feed events, invitation mail, operations
   ``succeeded`` with the answer a per-row create stores (a replay by key answers the same).

Whatever does not go set-wise goes through the per-row path (``importer._provision``), which
already answers it: a key that has an operation (replayed, or rejoined), an e-mail that has a
user row or an identity (``exists``; OWN / FOREIGN identities, G11), a second row for one
e-mail in a batch, a claim that does not fit, an identity the bulk create left out. They run
after the batch's claims: in an organization the batch fills, a row whose e-mail has an identity
answers ``organization_full`` where a strictly sequential import could have answered
``identity_exists`` (the seats go to the new rows; tests/drift/test_bulk_import_fallbacks.py
says why that is the answer kept). A batch that stops between its transactions leaves
ordinary open operations: the worker or a rerun finishes them one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID, uuid4

from accord.domain import errors
from accord.domain.bulk_store import BulkClaim, BulkCreates, BulkEnsured, BulkFinish, SetWise
from accord.domain.callers import Caller
from accord.domain.model import CredentialMode, OperationKind, OperationState, Role, UserStatus
from accord.domain.ports import CreatesMany, NewRemoteUser
from accord.domain.principals import audit_by
from accord.domain.records import AuditEvent, OperationRecord
from accord.domain.store import Transaction
from accord.services import crashpoints
from accord.services.context import Context
from accord.services.crashpoints import CrashPoint
from accord.services.operations import new_operation, same_request
from accord.services.provisioning import queue_invitation_row, run_hooks
from accord.services.views import user_json

KIND = OperationKind.CREATE_USER
# What ``CreateUser.ensure_remote`` leaves for an identity it created, for an import's request
# (no credential named: an invitation).
CREATED_STATE = {"identity": "created", "credential": CredentialMode.INVITE.value}


@dataclass(frozen=True)
class Row:
    """A parsed, validated row: its line, its key and the request ``create_user`` would make."""

    line: int
    email: Any  # as the file spelled it (the result's ``email`` until the user's is known)
    key: str
    request: dict[str, Any]  # create_user's body

    @property
    def organization_id(self) -> UUID:
        return UUID(self.request["organization_id"])


@dataclass
class Outcome:
    """A batch's answers (by line), and the rows left for the per-row path."""

    done: dict[int, dict[str, Any]]
    left: list[Row]


async def available(accord: Context) -> bool:
    """Whether this IdP and store can create set-wise (else every row goes per-row: an IdP
    without a bulk create, or a store without a set-wise repository)."""
    if not isinstance(accord.idp, CreatesMany):
        return False
    async with accord.store.transaction() as tx:
        return isinstance(tx, SetWise)


def set_wise(tx: Transaction) -> BulkCreates:
    if not isinstance(tx, SetWise):
        raise errors.ConfigurationError("This store cannot create set-wise.")
    return tx.bulk


async def create_batch(accord: Context, caller: Caller, rows: Sequence[Row]) -> Outcome:
    """Create what can be created set-wise; the rest is left for the per-row path."""
    outcome = Outcome({}, [])
    fresh = await _sort_out(accord, caller, rows, outcome)
    groups: dict[UUID, list[Row]] = {}
    for row in fresh:
        groups.setdefault(row.organization_id, []).append(row)
    for org_id, group in groups.items():
        await _create_in(accord, caller, org_id, group, outcome)
    return outcome


async def _sort_out(
    accord: Context, caller: Caller, rows: Sequence[Row], outcome: Outcome
) -> list[Row]:
    """Replays answered from their stored result; rows the per-row path must answer put aside;
    the rows left are new, one per e-mail."""
    emails = list({r.request["email"] for r in rows})
    async with accord.store.transaction() as tx:
        known = await set_wise(tx).known(caller.key, [r.key for r in rows])
        taken = await set_wise(tx).taken_emails(emails)
    idp = accord.idp
    assert isinstance(idp, CreatesMany)
    try:
        busy = taken | await idp.existing([e for e in emails if e not in taken])
    except errors.ProviderError:  # nothing known: each row finds out the per-row way
        busy = set(emails)
    fresh: list[Row] = []
    seen: set[str] = set()
    for row in rows:
        before = known.get(row.key)
        if before is not None and _replayable(accord, caller, before, row):
            user = (before.result or {})["user"]
            outcome.done[row.line] = _answer(row, user, "exists")
        elif before is not None or row.request["email"] in busy | seen:
            outcome.left.append(row)
        else:
            seen.add(row.request["email"])
            fresh.append(row)
    return fresh


def _replayable(accord: Context, caller: Caller, before: Any, row: Row) -> bool:
    """A succeeded create of this very request: a replay would answer its stored result."""
    request = {**row.request, **caller.operation_fields()}
    return (
        before.state == OperationState.SUCCEEDED
        and bool(before.result)
        and same_request(accord, KIND, before.request_digest, row.request)
        and request["email"] == before.result["user"]["email"]
    )


def _answer(row: Row, user: dict[str, Any], status: str) -> dict[str, Any]:
    return {"line": row.line, "email": user["email"], "status": status, "user_id": user["id"]}


async def _create_in(
    accord: Context, caller: Caller, org_id: UUID, rows: list[Row], outcome: Outcome
) -> None:
    by_op: dict[UUID, Row] = {}
    claims = []
    for row in rows:
        key, request = row.key, row.request
        op = new_operation(accord, KIND, caller=caller, idempotency_key=key, request=request)
        by_op[op.id] = row
        claims.append(
            BulkClaim(
                operation=op,
                user_id=uuid4(),
                organization_id=org_id,
                email=row.request["email"],
                full_name=row.request["full_name"],
                created_by=op.request["actor"],
            )
        )
    claimed = await _claim(accord, caller, org_id, claims)
    ours = [c for c in claims if c.operation.id in claimed]
    outcome.left += [by_op[c.operation.id] for c in claims if c.operation.id not in claimed]
    crashpoints.reach(accord.settings, CrashPoint.AFTER_CLAIM)
    ensured = await _ensure(accord, ours)
    finished = await _finalize(accord, org_id, ensured)
    for op_id, user in finished.items():
        outcome.done[by_op[op_id].line] = _answer(by_op[op_id], user, "created")
    unfinished = [c.operation.id for c in ours if c.operation.id not in finished]
    if unfinished:  # ours still: the per-row path takes them on from where they are
        async with accord.store.transaction() as tx:
            await set_wise(tx).release(unfinished)
        outcome.left += [by_op[i] for i in unfinished]


async def _claim(
    accord: Context, caller: Caller, org_id: UUID, claims: list[BulkClaim]
) -> set[UUID]:
    """Transaction 1: rows and operations, then the seats (the claims past the limit are taken
    back: members + pending invitations + open claims, ours included, ≤ max_users)."""
    async with accord.store.transaction() as tx:
        claimed = await set_wise(tx).claim(claims)
        seats = await tx.organizations.lock_seats(org_id)
        mine = [c for c in claims if c.operation.id in claimed]  # in file order
        over = len(mine) if seats is None else max(0, seats[1] - seats[0].max_users)
        if over:
            back = [c.operation.id for c in mine[len(mine) - min(over, len(mine)) :]]
            await set_wise(tx).unclaim(back)
            claimed -= set(back)
            mine = [c for c in mine if c.operation.id in claimed]
        await tx.audit.record_many([_started(caller, c) for c in mine])
    return claimed


def _started(caller: Caller, claim: BulkClaim) -> AuditEvent:
    return AuditEvent(
        **caller.audit_fields(),
        action=f"{KIND}.started",
        operation_id=claim.operation.id,
        subject_user_id=claim.user_id,
        organization_id=claim.organization_id,
        subject_email=claim.email,
    )


async def _ensure(accord: Context, claims: list[BulkClaim]) -> list[OperationRecord]:
    """The IdP phase: one bulk create, then the recovery point of each identity it made."""
    idp = accord.idp
    assert isinstance(idp, CreatesMany)
    if not claims:
        return []
    try:
        made = await idp.create_many(
            [NewRemoteUser(c.user_id, c.email, c.full_name) for c in claims]
        )
    except errors.ProviderError:  # unavailable, or any other failure of the whole call
        return []  # nothing known: each operation finds out the per-row way
    crashpoints.reach(accord.settings, CrashPoint.IDP_ANSWERED)
    by_user = {r.accord_user_id: r for r in made}
    answers = [
        BulkEnsured(c.operation.id, by_user[str(c.user_id)].remote_id, True, CREATED_STATE)
        for c in claims
        if str(c.user_id) in by_user
    ]
    async with accord.store.transaction() as tx:
        ensured = await set_wise(tx).ensured(answers)
    crashpoints.reach(accord.settings, CrashPoint.AFTER_RECOVERY_POINT)
    return ensured


async def _finalize(
    accord: Context, org_id: UUID, ensured: list[OperationRecord]
) -> dict[UUID, dict[str, Any]]:
    """Transaction 3 for the whole batch; each operation's user document, by operation."""
    if not ensured:
        return {}
    try:
        async with accord.store.transaction() as tx:
            ops = await set_wise(tx).lock_ensured(ensured)
            if not ops or await tx.organizations.keep(org_id) is None:
                return {}
            users = await finalize_locked(tx, accord, org_id, ops)
            crashpoints.reach(accord.settings, CrashPoint.BEFORE_FINALIZE_COMMIT)
    except errors.HookFailed:
        return {}  # rolled back whole: each goes on alone, and only the failing one fails
    crashpoints.reach(accord.settings, CrashPoint.AFTER_COMMIT)
    return users


async def finalize_locked(
    tx: Transaction, accord: Context, org_id: UUID, ops: list[OperationRecord]
) -> dict[UUID, dict[str, Any]]:
    bulk = set_wise(tx)
    items = [_finish(accord, op, {}) for op in ops]
    await bulk.link_and_join(items)
    for op in ops:
        await run_hooks(tx, accord, op, org_id)
    found = await bulk.views([op.user_id for op in ops if op.user_id is not None])
    views = {v.user.id: user_json(v) for v in found}
    users = {op.id: views[op.user_id] for op in ops if op.user_id in views}
    await tx.audit.record_many(
        [_created(op, org_id) for op in ops], current=[users[op.id] for op in ops]
    )
    # The same items, now with the answer's user (the invitation rows are made once).
    await bulk.finish(
        [replace(i, result={**i.result, "user": users[i.operation.id]}) for i in items]
    )
    return users


def _finish(accord: Context, op: OperationRecord, user: dict[str, Any]) -> BulkFinish:
    result = {
        "operation_id": str(op.id),
        "user": user,
        "reused_identity": False,
        "credential": CredentialMode.INVITE.value,
    }
    return BulkFinish(
        operation=op,
        provider=accord.idp.name,
        created_by_accord=True,
        status=UserStatus.PENDING,
        role=Role(op.request["role"]),
        permissions=tuple(op.request["permissions"]),
        result=result,
        invitation=queue_invitation_row(accord, op),
    )


def _created(op: OperationRecord, org_id: UUID) -> AuditEvent:
    """``audit_creation``'s record for an identity the operation created."""
    return AuditEvent(
        **audit_by(op.request),
        action="user.created",
        subject_user_id=op.user_id,
        subject_email=op.request["email"],
        organization_id=org_id,
        operation_id=op.id,
        data={"role": op.request.get("role", Role.ORG_ADMIN)},
    )

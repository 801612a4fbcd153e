"""Set-wise resume (issue 12, P4): the worker finishes a leased batch of interrupted user
creations in a few statements for the whole batch, not a dozen for each.

It writes exactly what the per-row engine (``engine.drive`` with ``CreateUser``) writes from
the same recovery points, through the set-wise repository of ``accord import``
(``domain/bulk_store.py``, ``services/bulk_import.py``), and only for the plain case, where
that is the per-row outcome too: a ``create_user`` with an invitation (no secret sealed), not
out of attempts or past its deadline, whose identity this very operation made (or makes now):

1. the operations still at ``claimed`` (the IdP has a bulk API, ``CreatesMany``, or nothing
   goes set-wise: ``available``): one look-up of every e-mail; an identity stamped with the
   operation's own user id is the one an earlier attempt made (``Origin.CREATED``), an e-mail
   without one gets its identity in one bulk create; then one transaction moves them all to
   ``idp_ensured``. Any other identity (``own``, ``foreign``) is left to the per-row path,
   which decides about it.
2. finalize, one transaction per organization: the operations locked (still open at
   ``idp_ensured``), the organization kept, then links, users, memberships, hooks, audit and
   feed events, invitation mails, the operations ``succeeded`` (``bulk_import``'s finalize).
   An identity linked to another user already is left to the per-row path (it answers
   ``remote_conflict``); a hook that fails rolls the whole transaction back and every
   operation in it goes the per-row way, where only the failing one fails.

Whatever is left, the caller drives per row from the record returned (as it is now in the
database). A batch that stops between its transactions (a crash) leaves ordinary open
operations at a recovery point, leased: once the lease runs out, any worker resumes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from accord.domain import errors
from accord.domain.bulk_store import BulkEnsured
from accord.domain.model import CredentialMode, OperationKind, RecoveryPoint
from accord.domain.ports import CreatesMany, NewRemoteUser
from accord.domain.records import OperationRecord
from accord.services import bulk_import, crashpoints
from accord.services.bulk_import import CREATED_STATE, finalize_locked, set_wise
from accord.services.context import Context
from accord.services.crashpoints import CrashPoint
from accord.services.engine import gives_up


def plain(accord: Context, op: OperationRecord) -> bool:
    """Whether the set-wise path writes for ``op`` what the per-row path would: a user
    creation the engine resumes (``engine.gives_up`` says no), with an invitation, whose
    identity this very operation made or makes now."""
    request = op.request
    if (
        op.kind != OperationKind.CREATE_USER
        or op.user_id is None
        or op.organization_id is None
        or op.sealed_secrets is not None
        or request.get("credential") not in (None, CredentialMode.INVITE.value)
        or str(op.organization_id) != request.get("organization_id")
        or gives_up(accord, op)
    ):
        return False
    if op.recovery_point == RecoveryPoint.CLAIMED:
        return not op.flow_state
    if op.recovery_point == RecoveryPoint.IDP_ENSURED:
        return bool(op.created_remote and op.remote_id) and op.flow_state == CREATED_STATE
    return False


async def resume_batch(
    accord: Context, leased: Sequence[OperationRecord]
) -> tuple[int, list[OperationRecord]]:
    """Finish what can be finished set-wise; how many succeeded, and the operations left for
    the per-row path (as they are now)."""
    latest = {op.id: op for op in leased}
    ours = [op for op in leased if plain(accord, op)]
    if not ours:
        return 0, list(leased)
    claimed = [op for op in ours if op.recovery_point == RecoveryPoint.CLAIMED]
    ensured = [op for op in ours if op.recovery_point == RecoveryPoint.IDP_ENSURED]
    if claimed:
        moved = await _ensure(accord, claimed)
        latest.update({op.id: op for op in moved})
        ensured += moved
    done: set[UUID] = set()
    groups: dict[UUID, list[OperationRecord]] = {}
    for op in ensured:
        assert op.organization_id is not None
        groups.setdefault(op.organization_id, []).append(op)
    for org_id, group in groups.items():
        done |= await _finalize(accord, org_id, group)
    return len(done), [op for op in latest.values() if op.id not in done]


async def _ensure(accord: Context, claimed: list[OperationRecord]) -> list[OperationRecord]:
    """The IdP phase for operations at ``claimed``: the operations moved to ``idp_ensured``."""
    idp = accord.idp
    assert isinstance(idp, CreatesMany)
    by_email = {op.request["email"]: op for op in claimed}
    if len(by_email) != len(claimed):  # two of one e-mail: the per-row path sorts them out
        return []
    try:
        found = {r.email: r for r in await idp.find_many(list(by_email))}
        mine = {
            email: found[email].remote_id
            for email, op in by_email.items()
            if email in found and found[email].accord_user_id == str(op.user_id)
        }
        new = [
            NewRemoteUser(op.user_id, email, op.request["full_name"])
            for email, op in by_email.items()
            if email not in found and op.user_id is not None
        ]
        made = await idp.create_many(new) if new else []
    except errors.ProviderError:  # unavailable, or any other failure of the whole call
        return []  # nothing known: each operation finds out the per-row way
    mine |= {r.email: r.remote_id for r in made}  # stamped with the operation's user id
    crashpoints.reach(accord.settings, CrashPoint.IDP_ANSWERED)
    if not mine:
        return []
    answers = [
        BulkEnsured(by_email[email].id, remote_id, True, CREATED_STATE)
        for email, remote_id in sorted(mine.items())
    ]
    async with accord.store.transaction() as tx:
        moved = await set_wise(tx).ensured(answers)
    crashpoints.reach(accord.settings, CrashPoint.AFTER_RECOVERY_POINT)
    return moved


async def _finalize(accord: Context, org_id: UUID, ensured: list[OperationRecord]) -> set[UUID]:
    """Transaction 3 for the operations of one organization: the ids of those it finished."""
    provider = accord.idp.name
    try:
        async with accord.store.transaction() as tx:
            bulk = set_wise(tx)
            ops = await bulk.lock_ensured(ensured)
            if not ops or await tx.organizations.keep(org_id) is None:
                return set()
            held = await bulk.holders(provider, [op.remote_id for op in ops if op.remote_id])
            ops = [
                op
                for op in ops
                if plain(accord, op)
                and op.organization_id == org_id
                and held.get(op.remote_id or "", op.user_id) == op.user_id
            ]
            if not ops:
                return set()
            await finalize_locked(tx, accord, org_id, ops)
            crashpoints.reach(accord.settings, CrashPoint.BEFORE_FINALIZE_COMMIT)
    except errors.HookFailed:
        return set()  # rolled back whole: each goes on alone, and only the failing one fails
    crashpoints.reach(accord.settings, CrashPoint.AFTER_COMMIT)
    return {op.id for op in ops}


async def available(accord: Context) -> bool:
    """Whether operations can be resumed set-wise here: a store that can (PostgreSQL's) and an
    IdP with a bulk create (the local IdP). With any other IdP every operation goes per row,
    leased in batches of the free places (``worker.resume_due_operations``). The import's
    test (``bulk_import.available``): the two paths share the set-wise repository."""
    return await bulk_import.available(accord)

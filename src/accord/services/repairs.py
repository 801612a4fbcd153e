"""The repairs that ``reconcile --fix`` applies, one finding at a time, each made safe alone.

Each repair re-reads what it is about to change, in the transaction that changes it: the row
under its lock, and whether an open operation owns the user or the e-mail (a running operation
is never touched: its own runner finishes it). An IdP user is deleted only while its e-mail is
held (``hold_email``): a concurrent claim for that e-mail waits, then finds no IdP user to adopt,
instead of adopting one that is about to vanish. Each repair writes an audit event and says
whether the drift is gone; a repair that finds the world changed since the scan does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from accord.domain import errors
from accord.domain.drift import Action, Finding, email_key
from accord.domain.emails import local_part, normalize_email
from accord.domain.model import LIVE_STATUSES, OperationState, UserStatus
from accord.domain.ports import NewRemoteUser, RemoteUser
from accord.domain.records import AuditEvent, UserRecord
from accord.domain.store import Transaction
from accord.services import leaving, operations
from accord.services.context import Context

READ_ATTEMPTS = 4
LINKABLE = (*LIVE_STATUSES, UserStatus.SUSPENDED)  # a suspended row keeps (and may regain) its link


class Changed(Exception):
    """The world changed since the scan: roll back and leave the finding as it is."""


async def read_remote(accord: Context, remote_id: str) -> RemoteUser | None:
    """The IdP user, or None if the IdP says it is gone; transient failures are retried."""
    for attempt in range(READ_ATTEMPTS):
        try:
            return await accord.idp.get(remote_id)
        except errors.RemoteNotFound:
            return None
        except errors.ProviderUnavailable as exc:
            if attempt == READ_ATTEMPTS - 1:
                raise
            await asyncio.sleep(min(exc.retry_after or 0.5 * 2**attempt, 10.0))
    raise AssertionError("unreachable")


async def apply(accord: Context, finding: Finding, actor: str) -> None:
    """Apply the finding's action; mark it done if the drift is gone."""
    repair = _REPAIRS.get(finding.action)
    if repair is None:
        return
    try:
        finding.done = await repair(accord, finding, actor)
    except Changed as changed:
        finding.note = f"left: {changed}"
    except errors.AccordError as exc:  # this one repair failed; the others go on
        finding.note = f"left: {exc.code}: {exc.message}"


async def _check_free(tx: Transaction, user_id: Any, email: str) -> None:
    if await tx.operations.open_touching(user_id=user_id, email=email) is not None:
        raise Changed("an operation is running for this user")


async def _audit(tx: Transaction, actor: str, action: str, f: Finding, **data: Any) -> None:
    user_id = f.ids.get("user_id")
    await tx.audit.record(
        AuditEvent(
            actor=actor,
            action=action,
            subject_user_id=UUID(user_id) if user_id else None,
            subject_email=f.email,
            data={"drift": f.drift.value, **data},
        )
    )


async def _end_memberships(tx: Transaction, actor: str, f: Finding, user_id: UUID) -> None:
    """End the row's memberships, each audited ``membership.removed`` (and so in the change
    feed, whose consumers hold them). A repair ends them whatever the organization rules
    (``leaving``) say: the person has no identity left to use them with."""
    view = await tx.users.view(user_id)
    await tx.memberships.remove_all(user_id)
    for membership in view.memberships if view is not None else ():
        await leaving.audit_ended(
            tx, membership, by={"actor": actor}, email=f.email, drift=f.drift.value
        )


# -- rows --------------------------------------------------------------------------------------


async def _locked_row(tx: Transaction, f: Finding, statuses: tuple[str, ...]) -> UserRecord:
    row = await tx.users.get(UUID(f.ids["user_id"]), lock=True)
    if row is None or row.status not in statuses or row.email != f.email:
        raise Changed("the row changed since the scan")
    await _check_free(tx, row.id, f.email)
    return row


async def _current_link(tx: Transaction, accord: Context, user_id: UUID) -> str | None:
    link = await tx.links.get(user_id, accord.idp.name)
    return link.remote_id if link else None


async def link_match(accord: Context, f: Finding, actor: str) -> bool:
    """Link a row to the IdP user with its e-mail (replacing a link to a vanished one)."""
    remote = await read_remote(accord, f.ids["remote_id"])
    if remote is None or email_key(remote.email) != f.email:
        raise Changed("the IdP user changed since the scan")
    async with accord.store.transaction() as tx:
        row = await _locked_row(tx, f, LINKABLE)
        if await _current_link(tx, accord, row.id) != f.ids.get("stale_remote_id"):
            raise Changed("the row was linked meanwhile")
        if await tx.links.holder(accord.idp.name, remote.remote_id) is not None:
            raise Changed("the IdP user was linked meanwhile")
        await tx.links.link(
            user_id=row.id,
            provider=accord.idp.name,
            remote_id=remote.remote_id,
            created_by_accord=remote.accord_user_id == str(row.id),
        )
        await _audit(tx, actor, "reconcile.linked", f, remote_id=remote.remote_id)
    return True


async def deprovision_row(accord: Context, f: Finding, actor: str) -> bool:
    """Cut a row's access whose IdP user is gone: a database-only change (nothing remote)."""
    async with accord.store.transaction() as tx:
        row = await _locked_row(tx, f, LINKABLE)
        if await _current_link(tx, accord, row.id) != f.ids.get("remote_id"):
            raise Changed("the row was linked meanwhile")
        await _end_memberships(tx, actor, f, row.id)
        await tx.links.unlink_all(row.id)
        await tx.one_time_tokens.delete_for_user(row.id)
        await tx.outbox.delete_unsent(f.email)
        await tx.users.retire(row.id)
        await _audit(tx, actor, "reconcile.row_deprovisioned", f, reason=f.ids.get("reason"))
    return True


async def remove_unfinished_row(
    accord: Context, f: Finding, actor: str, action: str = "reconcile.row_removed"
) -> bool:
    """Delete a row that was never finished (no link, no running operation)."""
    async with accord.store.transaction() as tx:
        row = await _locked_row(tx, f, (f.ids["status"],))
        if await _current_link(tx, accord, row.id) is not None:
            raise Changed("the row was linked meanwhile")
        await _end_memberships(tx, actor, f, row.id)
        await tx.users.delete(row.id)
        await _audit(tx, actor, action, f, status=row.status)
    return True


async def recreate_identity(accord: Context, f: Finding, actor: str) -> bool:
    """Give a row a new IdP user (no password: a set-password mail goes out) and link it."""
    user_id = UUID(f.ids["user_id"])
    async with accord.store.transaction() as tx:
        row = await _locked_row(tx, f, LIVE_STATUSES)
    remote = await _ensure_remote(accord, user_id, f.email, row.full_name)
    try:
        async with accord.store.transaction() as tx:
            await _locked_row(tx, f, LIVE_STATUSES)
            if await _current_link(tx, accord, user_id) != f.ids.get("remote_id"):
                raise Changed("the row was linked meanwhile")
            await tx.links.link(
                user_id=user_id,
                provider=accord.idp.name,
                remote_id=remote.remote_id,
                created_by_accord=True,
            )
            await tx.users.update(user_id, status=UserStatus.PENDING)
            await _queue_setup_mail(tx, accord, row, remote.remote_id)
            await _audit(tx, actor, "reconcile.identity_recreated", f, remote_id=remote.remote_id)
    except Changed:
        await accord.idp.delete(remote.remote_id)  # ours (made for this row), unused: undo it
        raise
    return True


async def _ensure_remote(accord: Context, user_id: UUID, email: str, full_name: str) -> RemoteUser:
    """A new IdP user for the row, or the one an earlier attempt made for it (its stamp)."""
    try:
        return await accord.idp.create(NewRemoteUser(user_id, email, full_name))
    except (errors.RemoteConflict, errors.OutcomeUnknown):
        found = await accord.idp.find_by_email(email)
    if found is None or found.accord_user_id != str(user_id):
        raise Changed("another IdP user has this e-mail now")
    return found


async def _queue_setup_mail(
    tx: Transaction, accord: Context, row: UserRecord, remote_id: str
) -> None:
    assert row.email is not None, "a live row has its e-mail"
    await tx.outbox.enqueue(
        kind="invitation",
        dedupe_key=f"reconcile-recreate:{row.id}:{remote_id}",
        recipient=row.email,
        payload={
            "user_id": str(row.id),
            "full_name": row.full_name,
            "valid_hours": accord.settings.invite_ttl_hours,
        },
    )


async def match_enabled(accord: Context, f: Finding, actor: str) -> bool:
    """Block or unblock a row's IdP user toward the row's status (suspended: blocked). The row
    stays locked across the IdP call, so no suspension or reactivation claims it meanwhile."""
    enable = f.action == Action.UNBLOCK
    async with accord.store.transaction() as tx:
        row = await _locked_row(tx, f, LINKABLE)
        if (row.status != UserStatus.SUSPENDED) != enable:
            raise Changed("the row was suspended or reactivated meanwhile")
        if await _current_link(tx, accord, row.id) != f.ids["remote_id"]:
            raise Changed("the row was linked meanwhile")
        await accord.idp.set_enabled(f.ids["remote_id"], enable)
        action = "reconcile.idp_user_unblocked" if enable else "reconcile.idp_user_blocked"
        await _audit(tx, actor, action, f, remote_id=f.ids["remote_id"])
    return True


# -- IdP users ---------------------------------------------------------------------------------


async def delete_idp_user(accord: Context, f: Finding, actor: str) -> bool:
    """Delete an IdP user accord created and never finished, while its e-mail is held."""
    remote = await read_remote(accord, f.ids["remote_id"])
    if remote is None:
        f.note = "already gone"
        return True
    async with accord.store.transaction() as tx:
        placeholder = await _hold(tx, remote.email)
        await _check_free(tx, f.ids.get("accord_user_id"), email_key(remote.email))
        if await tx.links.holder(accord.idp.name, remote.remote_id) is not None:
            raise Changed("the IdP user was linked meanwhile")
        await accord.idp.delete(remote.remote_id)
        await tx.users.release_email(placeholder)
        await _audit(tx, actor, "reconcile.idp_user_deleted", f, remote_id=remote.remote_id)
    return True


async def _hold(tx: Transaction, email: str) -> UUID | None:
    """Hold a claimable e-mail; one that is not valid for accord can never be claimed."""
    try:
        normalized = normalize_email(email)
    except errors.EmailInvalid:
        return None
    if normalized != email_key(email):
        return None  # no claim can ever produce this spelling
    held, placeholder = await tx.users.hold_email(normalized)
    if not held:
        raise Changed("a user with this e-mail exists now")
    return placeholder


async def adopt_idp_user(accord: Context, f: Finding, actor: str) -> bool:
    """Give an IdP user accord did not create a row (without memberships) and link it."""
    remote = await read_remote(accord, f.ids["remote_id"])
    if remote is None:
        f.note = "already gone"
        return True
    try:
        email = normalize_email(remote.email)
    except errors.EmailInvalid as exc:
        raise Changed(f"its e-mail cannot be adopted: {exc.message}") from None
    if email != remote.email:
        raise Changed("its e-mail is not in normalized form in the IdP; a person fixes it")
    async with accord.store.transaction() as tx:
        name = " ".join((remote.full_name or "").split()) or local_part(email)
        user_id = await tx.users.insert_adopted(email=email, full_name=name, created_by=actor)
        if user_id is None:
            raise Changed("a user with this e-mail exists now")
        await _check_free(tx, None, email)
        if await tx.links.holder(accord.idp.name, remote.remote_id) is not None:
            raise Changed("the IdP user was linked meanwhile")
        await tx.links.link(
            user_id=user_id,
            provider=accord.idp.name,
            remote_id=remote.remote_id,
            created_by_accord=False,
        )
        f.ids["user_id"] = str(user_id)
        await _audit(tx, actor, "reconcile.identity_adopted", f, remote_id=remote.remote_id)
    return True


# -- operations --------------------------------------------------------------------------------


async def resume_operation(accord: Context, f: Finding, actor: str) -> bool:
    """Drive a stuck operation to its end; the engine compensates one that cannot finish."""
    op_id = UUID(f.ids["operation_id"])
    # It ends compensated, or waits for the IdP again (an error either way): its state says.
    with contextlib.suppress(errors.AccordError):
        await operations.resume(accord, op_id)
    async with accord.store.transaction() as tx:
        op = await tx.operations.get(op_id)
        if op is None or not op.is_terminal:
            f.note = "left: running elsewhere, or waiting for the identity provider"
            return False
        await _audit(tx, actor, "reconcile.operation_resumed", f, state=op.state.value)
    f.note = "finished" if op.state == OperationState.SUCCEEDED else "compensated"
    return True


_REPAIRS: dict[Action, Callable[[Context, Finding, str], Awaitable[bool]]] = {
    Action.LINK: link_match,
    Action.DEPROVISION: deprovision_row,
    Action.REMOVE_ROW: remove_unfinished_row,
    Action.RECREATE: recreate_identity,
    Action.DELETE_IDP_USER: delete_idp_user,
    Action.ADOPT: adopt_idp_user,
    Action.RESUME: resume_operation,
    Action.BLOCK: match_enabled,
    Action.UNBLOCK: match_enabled,
}

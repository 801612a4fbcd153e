"""Changing a user's profile: e-mail address and name across both systems, and the
platform-administrator flag (accord's database only).

A change that touches the IdP (a new e-mail address, a new name) is one durable operation of
kind ``change_email`` (services/operations.py):

1. claim: the user row is locked; a new address is reserved by a placeholder row that takes
   the unique e-mail index (``Users.reserve_email``), so a create of that address racing the
   change loses cleanly (``email_exists``), or the change does: never both. The old address
   stays the user's until the change commits.
2. ensure: an identity in the IdP that already has the new address and is not this user's
   refuses the change (``identity_exists``) before anything is written; otherwise the IdP
   user's e-mail (and name) change. A lost answer is resolved by doing the same again: setting
   an address twice is the same as once.
3. finalize: the placeholder goes and the row takes the new address (its version grows), in
   one transaction; ``user.email_changed`` {old, new} is audited and a notice is queued for the
   old address (the outbox, after commit).

A failure compensates: the IdP user is given its old address and name back (if they changed),
and the reservation is released. A change to what the user already has is a no-op (nothing
is written, no operation). The flag ``is_platform_admin`` alone is one transaction.

An organization-scoped caller may change only users whose every membership is in its
organization, and whose identity accord created (G11); any other user answers
``user_not_found``, as a missing one does (G10), and an adopted identity ``forbidden``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.emails import normalize_email
from accord.domain.model import OperationKind, UserStatus
from accord.domain.principals import audit_by
from accord.domain.records import AuditEvent, UserRecord
from accord.domain.store import OperationChanges, Transaction, UserChanges
from accord.services import crashpoints, credentials, operations
from accord.services.context import Context, Flow, Step
from accord.services.crashpoints import CrashPoint
from accord.services.deprovisioning import caller_scope
from accord.services.ids import parse_id
from accord.services.provisioning import clean_name, user_document

NOTICE_KIND = "email_changed"


@dataclass(frozen=True)
class ProfileChange:
    """What a PATCH of a user asks for; None: leave it as it is."""

    email: str | None = None
    full_name: str | None = None
    is_platform_admin: bool | None = None


async def update_user(
    accord: Context,
    user_id: str | UUID,
    change: ProfileChange,
    *,
    caller: Caller,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Change a user's profile. Returns ``{"operation_id", "user"}`` (``operation_id`` None when
    nothing had to be asked of the identity provider); raises ``OperationPending`` when the IdP
    is unavailable and the change goes on later."""
    uid = parse_id(user_id, "The user id")
    if change.is_platform_admin is not None:
        caller.require_platform()
    request: dict[str, Any] = {
        "user_id": str(uid),
        "email": normalize_email(change.email) if change.email is not None else None,
        "full_name": clean_name(change.full_name) if change.full_name is not None else None,
        "is_platform_admin": change.is_platform_admin,
        "scope": caller_scope(caller),
    }
    async with accord.store.transaction() as tx:
        started = idempotency_key is not None and (
            await tx.operations.find_by_key(caller.key, idempotency_key) is not None
        )
        if not started:  # a retry of a started change rejoins it; anything else looks first
            user = await _changeable(tx, uid, request["scope"])
            wanted = _wanted(user, request)
            if wanted["email"] is None and wanted["full_name"] is None:
                if wanted["is_platform_admin"] is not None:  # the database's alone: one tx
                    await _set_admin_flag(tx, user, wanted["is_platform_admin"], caller)
                return {"operation_id": None, "user": await user_document(tx, uid)}
    return await operations.execute(
        accord,
        OperationKind.CHANGE_EMAIL,
        caller=caller,
        idempotency_key=idempotency_key,
        request=request,
    )


def _wanted(user: UserRecord, request: dict[str, Any]) -> dict[str, Any]:
    """Of what the request asks, what differs from the user as they are (None: unchanged)."""
    current = {
        "email": user.email,
        "full_name": user.full_name,
        "is_platform_admin": user.is_platform_admin,
    }
    return {
        key: None if request.get(key) is None or request[key] == value else request[key]
        for key, value in current.items()
    }


async def _changeable(tx: Transaction, user_id: UUID, scope: str | None) -> UserRecord:
    """The user, if this caller may change them: UserNotFound for another tenant's (G10)."""
    user = await tx.users.get(user_id, lock=True)
    orgs = {str(o) for o in await tx.memberships.organizations_of(user_id)} if user else set()
    if user is None or (scope is not None and orgs != {scope}):
        raise errors.UserNotFound(f"No user {user_id}.")
    if user.status == UserStatus.DISABLED or user.email is None:
        raise errors.UserNotFound(f"The user {user_id} was deprovisioned; it cannot be changed.")
    if user.status == UserStatus.PROVISIONING:
        raise errors.OperationInProgress(
            "The user is still being provisioned; retry when that operation has finished."
        )
    return user


async def _set_admin_flag(tx: Transaction, user: UserRecord, flag: bool, caller: Caller) -> None:
    await tx.users.update(user.id, is_platform_admin=flag)
    await tx.audit.record(
        AuditEvent(
            **caller.audit_fields(),
            action="user.updated",
            subject_user_id=user.id,
            subject_email=user.email,
            data={"is_platform_admin": {"old": user.is_platform_admin, "new": flag}},
        )
    )


class ChangeProfile(Flow):
    """The ``change_email`` operation: a new e-mail address and/or name in both systems."""

    kind = OperationKind.CHANGE_EMAIL

    async def claim(self, tx: Transaction, accord: Context, step: Step) -> OperationChanges:
        request = step.op.request
        user_id = UUID(request["user_id"])
        user = await _changeable(tx, user_id, request.get("scope"))
        if await tx.operations.open_for_user(user_id) is not None:
            raise errors.OperationInProgress(
                "Another change of this user is running; retry when it has finished."
            )
        link = await tx.links.get(user_id, accord.idp.name)
        if link is None:
            raise errors.UserNotLinked(
                f"The user {user.email} has no identity in {accord.idp.name} to change; "
                "run `accord reconcile` to find or link it."
            )
        if request.get("scope") is not None and not link.created_by_accord:
            raise errors.Forbidden(  # G11: only a platform caller changes an adopted identity
                "This user's identity was not created by accord; only a platform administrator "
                "may change it."
            )
        wanted = _wanted(user, request)
        placeholder = await _reserve(tx, step, wanted["email"])
        state = {
            "old_email": user.email,
            "old_name": user.full_name,
            "remote_id": link.remote_id,
            "placeholder": str(placeholder) if placeholder else None,
            "wanted": wanted,
        }
        return {"user_id": user_id, "flow_state": state}

    async def ensure_remote(self, accord: Context, step: Step) -> OperationChanges:
        state = step.op.flow_state
        wanted = state["wanted"]
        remote_id, email, name = state["remote_id"], wanted["email"], wanted["full_name"]
        if email is None and name is None:
            return {"remote_id": remote_id, "created_remote": False}  # only the flag, or nothing
        if email is not None:
            holder = await accord.idp.find_by_email(email)
            if holder is not None and holder.remote_id != remote_id:  # before any write
                raise errors.IdentityExists(
                    f"The identity provider already has another account for {email}; the "
                    "address cannot be given to this user. Remove or rename that account first "
                    "(`accord reconcile` lists it)."
                )
        try:
            await accord.idp.update(remote_id, email=email, full_name=name)
        except errors.RemoteNotFound:
            raise errors.RemoteRejected(
                f"The identity provider's user {remote_id} is gone; run `accord reconcile`."
            ) from None
        crashpoints.reach(accord.settings, CrashPoint.IDP_CALL_SENT)
        return {"remote_id": remote_id, "created_remote": False}

    async def finalize(self, tx: Transaction, accord: Context, step: Step) -> dict[str, Any]:
        op, state = step.op, step.op.flow_state
        wanted = state["wanted"]
        assert op.user_id is not None
        user = await tx.users.get(op.user_id, lock=True)
        if user is None or user.status == UserStatus.DISABLED:
            raise errors.UserNotFound(f"The user {op.user_id} was deprovisioned meanwhile.")
        changes: UserChanges = {}
        if wanted["full_name"] is not None:
            changes["full_name"] = wanted["full_name"]
        if wanted["is_platform_admin"] is not None:
            changes["is_platform_admin"] = wanted["is_platform_admin"]
        if wanted["email"] is not None:
            await _release(tx, state)  # the placeholder gives the index to the user's row
            changes["email"] = wanted["email"]
        if changes:
            await tx.users.update(op.user_id, **changes)
            await _audit(tx, step, user)
        if wanted["email"] is not None:
            # The links mailed, or still queued, to the old address stop opening this account
            # (its owner may be someone else by now); one who never set a password gets a
            # fresh link at the new address.
            await credentials.withdraw_links(tx, op.user_id, state["old_email"])
            await credentials.invite_again(tx, accord, op.user_id, f"email-moved:{op.id}")
            await tx.outbox.enqueue(
                kind=NOTICE_KIND,
                dedupe_key=f"{NOTICE_KIND}:{op.id}",
                recipient=state["old_email"],
                payload={
                    "user_id": str(op.user_id),
                    "full_name": changes.get("full_name", user.full_name),
                    "new_email": wanted["email"],
                },
            )
        return {"user": await user_document(tx, op.user_id)}

    async def undo_remote(self, accord: Context, step: Step) -> bool:
        """Give the IdP user its old address and name back, where they changed."""
        state = step.op.flow_state
        try:
            current = await accord.idp.get(state["remote_id"])
        except errors.RemoteNotFound:
            return False
        email = state["old_email"] if current.email != state["old_email"] else None
        name = state["old_name"] if state["wanted"]["full_name"] is not None else None
        if email is not None or (name is not None and current.full_name != name):
            try:
                await accord.idp.update(state["remote_id"], email=email, full_name=name)
            except errors.RemoteConflict:
                return False  # someone took the old address meanwhile: reconcile reports it
            crashpoints.reach(accord.settings, CrashPoint.UNDO_SENT)
        return False  # nothing was deleted

    async def undo_claim(self, tx: Transaction, accord: Context, step: Step) -> None:
        await _release(tx, step.op.flow_state)


async def _reserve(tx: Transaction, step: Step, email: str | None) -> UUID | None:
    if email is None:
        return None
    placeholder = await tx.users.reserve_email(email, created_by=f"change_email:{step.op.id}")
    if placeholder is None:
        raise errors.EmailAlreadyExists(f"A user with the e-mail address {email} already exists.")
    return placeholder


async def _release(tx: Transaction, state: dict[str, Any]) -> None:
    """Delete the reservation, if it is still one (never a row that became a user)."""
    if not state.get("placeholder"):
        return
    placeholder = UUID(state["placeholder"])
    row = await tx.users.get(placeholder, lock=True)
    if row is not None and row.status == UserStatus.PROVISIONING:
        await tx.users.delete(placeholder)


async def _audit(tx: Transaction, step: Step, user: UserRecord) -> None:
    op, wanted = step.op, step.op.flow_state["wanted"]
    by = audit_by(op.request)
    if wanted["email"] is not None:
        await tx.audit.record(
            AuditEvent(
                **by,
                action="user.email_changed",
                subject_user_id=op.user_id,
                subject_email=wanted["email"],
                operation_id=op.id,
                data={"old": user.email, "new": wanted["email"]},
            )
        )
    fields = {
        key: {"old": getattr(user, key), "new": wanted[key]}
        for key in ("full_name", "is_platform_admin")
        if wanted[key] is not None
    }
    if fields:
        await tx.audit.record(
            AuditEvent(
                **by,
                action="user.updated",
                subject_user_id=op.user_id,
                subject_email=wanted["email"] or user.email,
                operation_id=op.id,
                data=fields,
            )
        )

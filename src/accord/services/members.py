"""Memberships: list an organization's members, add or change one, remove one.

Each change is one transaction and never calls the IdP: a membership lives in accord alone.
Every change takes the organization's seat lock first (``lock_seats``), so changes to one
organization's members happen one at a time, and the rules below are checked on what is
committed once the lock is held, never on a stale read:

- removals and demotions pass ``services/leaving.py``, as every other ending of a membership
  does (deprovisioning included): a team organization keeps at least one ``org_admin``
  (``last_admin``; two admins removing each other at once: one of them stays), and the owner
  of a personal organization stays its ``org_admin`` member (``owner_membership``);
- adding a member takes a seat (G5): at ``max_users`` seats (members, and places held by
  creations still running), ``organization_full``.

Who may do what (G10): adding a person who is not yet a member needs a platform token; a
platform token or the organization's own may change a member's role and permissions, or remove
them. Another organization answers ``organization_not_found``, exactly as a missing one does;
for an organization token, a user who is not its member answers ``user_not_found``.

What becomes of a person whose last membership is removed is a setting
(``last_membership_removed``): ``keep`` the account (the default), or ``deprovision`` it. With
``deprovision`` the removal is itself a deprovision operation (``leaving`` the organization):
its claim ends the membership and, if it was the last, retires the person in the same
transaction, so no crash can leave someone without an organization yet still able to sign in.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import Role
from accord.domain.records import (
    AuditEvent,
    MemberRecord,
    MembershipRecord,
    OrganizationRecord,
)
from accord.domain.store import Transaction
from accord.services import deprovisioning, leaving
from accord.services.context import Context
from accord.services.ids import parse_id
from accord.services.provisioning import clean_permissions
from accord.services.reads import MAX_PAGE_SIZE, decode_cursor, encode_cursor
from accord.services.views import member_json


def visible_organization(caller: Caller, organization_id: str | UUID) -> UUID:
    """The organization's id, if the caller may manage it; else OrganizationNotFound (G10:
    another tenant's organization answers as a missing one)."""
    org_id = parse_id(organization_id, "The organization id")
    if not caller.can_manage(org_id):
        raise errors.OrganizationNotFound(f"No organization {org_id}.")
    return org_id


def _role(role: str | Role) -> Role:
    try:
        return Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise errors.InvalidInput(f"The role must be one of {allowed}, not {role!r}.") from None


async def list_members(
    accord: Context,
    organization_id: str | UUID,
    *,
    caller: Caller,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """A page of the organization's members: ``{"items", "next_cursor"}``, by user id."""
    org_id = visible_organization(caller, organization_id)
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise errors.InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}.")
    after = decode_cursor(cursor) if cursor else None
    async with accord.store.transaction() as tx:
        if await tx.organizations.get(org_id) is None:
            raise errors.OrganizationNotFound(f"No organization {org_id}.")
        found = await tx.memberships.page(org_id, after=after, limit=limit + 1)
    items = [member_json(m) for m in found[:limit]]
    more = len(found) > limit
    return {"items": items, "next_cursor": encode_cursor(items[-1]["user_id"]) if more else None}


async def put_member(
    accord: Context,
    organization_id: str | UUID,
    user_id: str | UUID,
    *,
    role: str | Role,
    permissions: tuple[str, ...] | list[str] = (),
    caller: Caller,
) -> tuple[dict[str, Any], bool]:
    """Add the user to the organization, or set their role and permissions there.

    Returns the membership and whether it was added (False: it existed, and now has the given
    role and permissions; the same request twice changes nothing the second time).
    """
    org_id = visible_organization(caller, organization_id)
    uid = parse_id(user_id, "The user id")
    wanted = MembershipRecord(uid, org_id, _role(role), tuple(clean_permissions(permissions)))
    async with accord.store.transaction() as tx:
        org, taken = await _lock(tx, org_id)
        current = await tx.memberships.get(uid, org_id)
        if current is None:
            email = await _add(tx, caller, org, taken, wanted)
        else:
            email = await change_membership(tx, caller, org, current, wanted)
    return member_json(MemberRecord(wanted, email or "")), current is None


async def remove_member(
    accord: Context, organization_id: str | UUID, user_id: str | UUID, *, caller: Caller
) -> dict[str, Any]:
    """Remove the user from the organization (their account stays, unless the setting
    ``last_membership_removed`` is ``deprovision`` and this was their last membership)."""
    org_id = visible_organization(caller, organization_id)
    uid = parse_id(user_id, "The user id")
    if accord.settings.last_membership_removed == "deprovision":
        return await _remove_or_deprovision(accord, org_id, uid, caller)
    async with accord.store.transaction() as tx:
        org, _ = await _lock(tx, org_id)
        current = await tx.memberships.get(uid, org_id)
        if current is None:
            raise errors.MembershipNotFound(f"User {uid} is not a member of organization {org_id}.")
        user = await tx.users.get(uid)
        email = user.email if user else None
        await leaving.leave(tx, org, current, by=caller.audit_fields(), email=email)
        left = len(await tx.memberships.organizations_of(uid))
    return _removed(org_id, uid, left, None)


async def _remove_or_deprovision(
    accord: Context, org_id: UUID, user_id: UUID, caller: Caller
) -> dict[str, Any]:
    """The removal as one deprovision operation: it ends this membership, and deprovisions
    the person in the same claim if it was their last one (a crash in between leaves no one
    without an organization and still provisioned). The operation acts with platform scope:
    the person is, or is about to be, no longer the organization's member."""
    if not caller.is_platform:  # G10: refuse another tenant's user before anything runs
        async with accord.store.transaction() as tx:
            if await tx.memberships.get(user_id, org_id) is None:
                raise errors.MembershipNotFound(
                    f"User {user_id} is not a member of organization {org_id}."
                )
    acting = replace(caller, is_platform=True, organization_id=None)
    try:
        done = await deprovisioning.deprovision_user(accord, user_id, caller=acting, leaving=org_id)
    except errors.OperationPending as pending:  # the IdP is away: the worker finishes it
        return _removed(org_id, user_id, 0, pending.operation_id)
    if done.get("removed_from_organization"):
        return _removed(org_id, user_id, done["memberships_left"], None)
    return _removed(org_id, user_id, 0, str(done["operation_id"]))


def _removed(org_id: UUID, user_id: UUID, left: int, operation_id: str | None) -> dict[str, Any]:
    return {
        "organization_id": str(org_id),
        "user_id": str(user_id),
        "memberships_left": left,
        "deprovision_operation_id": operation_id,
    }


async def _lock(tx: Transaction, org_id: UUID) -> tuple[OrganizationRecord, int]:
    """The organization, locked against other membership changes and seat claims."""
    locked = await tx.organizations.lock_seats(org_id)
    if locked is None:
        raise errors.OrganizationNotFound(f"No organization {org_id}.")
    return locked


async def _add(
    tx: Transaction, caller: Caller, org: OrganizationRecord, taken: int, new: MembershipRecord
) -> str | None:
    if not caller.is_platform:  # G10: whether the user exists elsewhere is not its business
        raise errors.UserNotFound(
            f"No member {new.user_id} in this organization; adding an existing user to an "
            "organization needs a platform token."
        )
    user = await tx.users.get(new.user_id, lock=True)  # not deprovisioned meanwhile
    if user is None or not user.is_live:
        raise errors.UserNotFound(f"No user {new.user_id} who could join an organization.")
    if taken >= org.max_users:
        raise errors.OrganizationFull(
            f"The organization {org.slug} has all its {org.max_users} seats taken; raise "
            "max_users or remove a member first.",
            max_users=org.max_users,
        )
    await _put(tx, new)
    await tx.audit.record(
        AuditEvent(
            **caller.audit_fields(),
            action="membership.added",
            subject_user_id=new.user_id,
            subject_email=user.email,
            organization_id=org.id,
            data={"role": new.role.value, "permissions": list(new.permissions)},
        )
    )
    return user.email


async def change_membership(
    tx: Transaction,
    caller: Caller,
    org: OrganizationRecord,
    current: MembershipRecord,
    new: MembershipRecord,
) -> str | None:
    """Change a membership the caller may change, in ``org`` (locked by ``tx``): demotions pass
    ``leaving.may_lose``; audited ``membership.updated``. Returns the member's e-mail."""
    user = await tx.users.get(new.user_id)
    email = user.email if user else None
    if current == new:
        return email  # a repeated PUT: nothing to change, nothing to audit
    if current.role == Role.ORG_ADMIN and new.role != Role.ORG_ADMIN:
        await leaving.may_lose(tx, org, current, removing=False)
    await _put(tx, new)
    await tx.audit.record(
        AuditEvent(
            **caller.audit_fields(),
            action="membership.updated",
            subject_user_id=new.user_id,
            subject_email=email,
            organization_id=org.id,
            data={
                "role": {"from": current.role.value, "to": new.role.value},
                "permissions": {"from": list(current.permissions), "to": list(new.permissions)},
            },
        )
    )
    return email


async def _put(tx: Transaction, membership: MembershipRecord) -> None:
    await tx.memberships.put(
        user_id=membership.user_id,
        organization_id=membership.organization_id,
        role=membership.role,
        permissions=membership.permissions,
    )

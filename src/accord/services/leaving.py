"""How a membership ends: the one check every removal and demotion passes.

A membership ends in three ways: an administrator removes it (``members.remove_member``), an
organization's DELETE of a shared or adopted user removes it (``deprovisioning``, scoped), or
the person is deprovisioned and leaves every organization at once (``deprovisioning``, in the
claim, with the address retired). Each goes through ``leave``, and a demotion through
``may_lose``, so the organization rules hold whichever door was used:

- a team organization with members keeps at least one ``org_admin`` among them: ending or
  demoting the last one while others stay answers ``last_admin`` (make another member
  ``org_admin`` first, or delete the organization); its last member may leave it;
- the owner of a personal organization stays its member (``owner_membership``), except when
  the owner is deprovisioned: the organization then stays as it is, for a platform
  administrator to decide on.

The rules are counted on what is committed once the organization is locked (``lock_seats``,
taken in id order when there are several), never on a stale read: of two removals at once, the
second sees the first.

What is not a membership ending and so does not pass here: the compensation of a creation that
never completed (its user never existed for anyone), and an organization's own deletion.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from accord.domain import errors
from accord.domain.model import OrganizationKind, Role
from accord.domain.records import AuditEvent, MembershipRecord, OrganizationRecord
from accord.domain.store import Transaction


async def lock(tx: Transaction, organization_ids: Iterable[UUID]) -> dict[UUID, OrganizationRecord]:
    """The organizations, each locked against membership changes and seat claims (in id
    order, so two transactions locking the same ones cannot deadlock). Missing ones are left
    out."""
    locked: dict[UUID, OrganizationRecord] = {}
    for org_id in sorted(set(organization_ids)):
        found = await tx.organizations.lock_seats(org_id)
        if found is not None:
            locked[org_id] = found[0]
    return locked


async def may_lose(
    tx: Transaction,
    org: OrganizationRecord,
    current: MembershipRecord,
    *,
    removing: bool,
    owner_leaves: bool = False,
) -> None:
    """Refuse to end (``removing``) or demote a membership the organization cannot lose.

    ``org`` must be locked by this transaction. ``owner_leaves``: the owner of a personal
    organization is being deprovisioned, and may leave it."""
    personal = org.kind == OrganizationKind.PERSONAL
    if personal and org.owner_user_id == current.user_id and not owner_leaves:
        what = "removed from" if removing else "demoted in"
        raise errors.OwnerMembership(
            f"User {current.user_id} owns the personal organization {org.slug} and cannot be "
            f"{what} it."
        )
    if org.kind != OrganizationKind.TEAM or current.role != Role.ORG_ADMIN:
        return
    if removing and await tx.memberships.count(org.id) <= 1:
        return  # its last member leaves: no one is left without an administrator
    if await tx.memberships.count_admins(org.id) <= 1:
        raise errors.LastAdmin(
            f"User {current.user_id} is the last org_admin of {org.slug}; make another member "
            "org_admin first (PUT their membership with role org_admin), or delete the "
            "organization.",
            organization_id=str(org.id),
        )


async def leave(
    tx: Transaction,
    org: OrganizationRecord,
    current: MembershipRecord,
    *,
    by: dict[str, Any],
    email: str | None,
    operation_id: UUID | None = None,
    owner_leaves: bool = False,
) -> None:
    """End the membership, if the organization may lose it; audited ``membership.removed``
    with the role and permissions it had. ``by``: the AuditEvent's actor fields
    (``Caller.audit_fields()``, or ``audit_by`` of an operation's request)."""
    await may_lose(tx, org, current, removing=True, owner_leaves=owner_leaves)
    await tx.memberships.remove(current.user_id, org.id)
    await audit_ended(tx, current, by=by, email=email, operation_id=operation_id)


async def audit_ended(
    tx: Transaction,
    ended: MembershipRecord,
    *,
    by: dict[str, Any],
    email: str | None,
    operation_id: UUID | None = None,
    **data: Any,
) -> None:
    """Audit (and so announce in the change feed) a membership that ended in this transaction:
    ``membership.removed`` with the role and permissions it had, and ``data``. Every ending
    records this, those ``leave`` allows and a repair's (whose person has no identity left)."""
    await tx.audit.record(
        AuditEvent(
            **by,
            action="membership.removed",
            subject_user_id=ended.user_id,
            subject_email=email,
            organization_id=ended.organization_id,
            operation_id=operation_id,
            data={"role": ended.role.value, "permissions": list(ended.permissions), **data},
        )
    )

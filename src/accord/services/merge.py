"""Merging two organizations: the repair for duplicates such as ``bob`` and ``bob_org``, made by
a trigger and application code each creating one (seed 001).

One transaction, both organizations locked (in id order): the source's members join the target
(a member of both keeps the stronger role and the union of permissions), the source's settings
fill the keys the target lacks, the source is removed, and an audit event records it all. It
refuses what would break a guarantee: more members than the target's ``max_users`` (G5, open
claims counted), a personal organization as the source (G4: it is its owner's one organization;
merge the other into it), or a source that an operation is adding a member to.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import OrganizationKind, Role
from accord.domain.records import AuditEvent, MemberRecord, OrganizationRecord
from accord.domain.store import Transaction
from accord.services.context import Context


async def merge_organizations(
    accord: Context, source: str, target: str, *, caller: Caller, apply: bool = False
) -> dict[str, Any]:
    """The merge plan of SOURCE into TARGET (ids or slugs); carried out when ``apply``."""
    caller.require_platform()
    async with accord.store.transaction() as tx:
        src_id, dst_id = await _resolve(tx, source), await _resolve(tx, target)
        if src_id == dst_id:
            raise errors.InvalidInput("SOURCE and TARGET are the same organization.")
        locked = await tx.organizations.lock_many([src_id, dst_id])
        src, dst = locked[src_id], locked[dst_id]
        plan = await _plan(tx, src, dst)
        if apply:
            await _carry_out(tx, plan, src, dst, caller)
        return {**plan["summary"], "applied": apply}


async def _resolve(tx: Transaction, ref: str) -> UUID:
    """An organization id from an id or a slug; OrganizationNotFound if neither."""
    try:
        org_id = UUID(ref)
    except ValueError:
        org = await tx.organizations.by_slug(ref)
        if org is None:
            raise errors.OrganizationNotFound(f"No organization {ref!r}.") from None
        return org.id
    if await tx.organizations.get(org_id) is None:
        raise errors.OrganizationNotFound(f"No organization {ref}.")
    return org_id


async def _plan(
    tx: Transaction, src: OrganizationRecord, dst: OrganizationRecord
) -> dict[str, Any]:
    if src.kind == OrganizationKind.PERSONAL:
        raise errors.InvalidInput(
            f"{src.slug} is the personal organization of its owner, their one organization "
            f"(G4); merge the other one into it: accord orgs merge {dst.id} {src.id}"
        )
    if await tx.operations.count_open_claims(src.id):
        raise errors.OperationInProgress(
            f"Operations are adding members to {src.slug}; merge when they have finished."
        )
    moving, staying = await tx.memberships.members(src.id), await tx.memberships.members(dst.id)
    after = len(moving.keys() | staying.keys()) + await tx.operations.count_open_claims(dst.id)
    if after > dst.max_users:
        raise errors.OrganizationFull(
            f"Merging would give {dst.slug} {after} members (pending ones included), over "
            f"its limit of {dst.max_users}; raise its max_users first."
        )
    taken = {k: v for k, v in src.settings.items() if k not in dst.settings}
    clashes = sorted(k for k, v in src.settings.items() if dst.settings.get(k, v) != v)
    memberships = [_merged(m, staying.get(uid)) for uid, m in moving.items()]
    summary = {
        "source": _brief(src),
        "target": _brief(dst),
        "members_added": sorted(m.email for uid, m in moving.items() if uid not in staying),
        "members_merged": sorted(m.email for uid, m in moving.items() if uid in staying),
        "members_after": after,
        "max_users": dst.max_users,
        "settings_taken": sorted(taken),
        "settings_kept_from_target": clashes,
        "api_tokens_removed": await tx.api_tokens.live_count(src.id),
    }
    return {"summary": summary, "memberships": memberships, "settings": taken}


def _merged(moving: MemberRecord, staying: MemberRecord | None) -> dict[str, Any]:
    """One member's membership in the target: the stronger role, the union of permissions."""
    mine, theirs = moving.membership, (staying or moving).membership
    role = Role.ORG_ADMIN if Role.ORG_ADMIN in (mine.role, theirs.role) else Role.ORG_USER
    permissions = set(mine.permissions) | set(theirs.permissions)
    return {"user_id": mine.user_id, "role": role, "permissions": sorted(permissions)}


def _brief(org: OrganizationRecord) -> dict[str, Any]:
    return {"id": str(org.id), "slug": org.slug, "kind": org.kind.value}


async def _carry_out(
    tx: Transaction,
    plan: dict[str, Any],
    src: OrganizationRecord,
    dst: OrganizationRecord,
    caller: Caller,
) -> None:
    by = caller.audit_fields()
    for membership in plan["memberships"]:
        had = await tx.memberships.get(membership["user_id"], dst.id)
        await tx.memberships.put(
            user_id=membership["user_id"],
            organization_id=dst.id,
            role=membership["role"],
            permissions=membership["permissions"],
        )
        action = "membership.updated" if had else "membership.added"
        await tx.audit.record(
            AuditEvent(
                **by,
                action=action,
                subject_user_id=membership["user_id"],
                organization_id=dst.id,
                data={"reason": "organization.merged", "from": str(src.id)},
            )
        )
    if plan["settings"]:
        await tx.organizations.update_settings(dst.id, {**plan["settings"], **dst.settings})
    leaving = await tx.memberships.members(src.id)
    await tx.organizations.delete(src.id)  # its memberships go with it
    for user_id in sorted(leaving):
        await tx.audit.record(
            AuditEvent(
                **by,
                action="membership.removed",
                subject_user_id=user_id,
                organization_id=src.id,
                data={"reason": "organization.merged", "into": str(dst.id)},
            )
        )
    await tx.audit.record(
        AuditEvent(
            **by,
            action="organization.deleted",
            organization_id=src.id,
            data={"reason": "organization.merged", "into": str(dst.id)},
        )
    )
    summary = plan["summary"]
    await tx.audit.record(
        AuditEvent(
            **caller.audit_fields(),
            action="organization.merged",
            organization_id=dst.id,
            data={k: summary[k] for k in summary if k not in ("target", "max_users")},
        )
    )

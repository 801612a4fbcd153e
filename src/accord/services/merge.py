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

from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db import repairs as sql
from accord.adapters.db import repository
from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import OrganizationKind, Role

if TYPE_CHECKING:
    from accord.bootstrap import Accord


async def merge_organizations(
    accord: Accord, source: str, target: str, *, caller: Caller, apply: bool = False
) -> dict[str, Any]:
    """The merge plan of SOURCE into TARGET (ids or slugs); carried out when ``apply``."""
    caller.require_platform()
    async with accord.db.transaction() as conn:
        src_id, dst_id = await _resolve(conn, source), await _resolve(conn, target)
        if src_id == dst_id:
            raise errors.InvalidInput("SOURCE and TARGET are the same organization.")
        locked = await sql.lock_organizations(conn, [src_id, dst_id])
        src, dst = locked[src_id], locked[dst_id]
        plan = await _plan(conn, src, dst)
        if apply:
            await _carry_out(conn, plan, src, dst, caller)
        return {**plan["summary"], "applied": apply}


async def _resolve(conn: AsyncConnection, ref: str) -> UUID:
    """An organization id from an id or a slug; OrganizationNotFound if neither."""
    try:
        org_id = UUID(ref)
    except ValueError:
        row = await sql.organization_by_slug(conn, ref)
        if row is None:
            raise errors.OrganizationNotFound(f"No organization {ref!r}.") from None
        return row["id"]
    if await repository.get_organization(conn, org_id) is None:
        raise errors.OrganizationNotFound(f"No organization {ref}.")
    return org_id


async def _plan(conn: AsyncConnection, src: RowMapping, dst: RowMapping) -> dict[str, Any]:
    if src["kind"] == OrganizationKind.PERSONAL:
        raise errors.InvalidInput(
            f"{src['slug']} is the personal organization of its owner, their one organization "
            f"(G4); merge the other one into it: accord orgs merge {dst['id']} {src['id']}"
        )
    if await sql.open_claims(conn, src["id"]):
        raise errors.OperationInProgress(
            f"Operations are adding members to {src['slug']}; merge when they have finished."
        )
    moving, staying = await sql.members(conn, src["id"]), await sql.members(conn, dst["id"])
    after = len(moving.keys() | staying.keys()) + await sql.open_claims(conn, dst["id"])
    if after > dst["max_users"]:
        raise errors.OrganizationFull(
            f"Merging would give {dst['slug']} {after} members (pending ones included), over "
            f"its limit of {dst['max_users']}; raise its max_users first."
        )
    taken = {k: v for k, v in src["settings"].items() if k not in dst["settings"]}
    clashes = sorted(k for k, v in src["settings"].items() if dst["settings"].get(k, v) != v)
    memberships = [_merged(m, staying.get(uid)) for uid, m in moving.items()]
    summary = {
        "source": _brief(src),
        "target": _brief(dst),
        "members_added": sorted(m["email"] for uid, m in moving.items() if uid not in staying),
        "members_merged": sorted(m["email"] for uid, m in moving.items() if uid in staying),
        "members_after": after,
        "max_users": dst["max_users"],
        "settings_taken": sorted(taken),
        "settings_kept_from_target": clashes,
        "api_tokens_removed": await sql.live_tokens(conn, src["id"]),
    }
    return {"summary": summary, "memberships": memberships, "settings": taken}


def _merged(moving: RowMapping, staying: RowMapping | None) -> dict[str, Any]:
    """One member's membership in the target: the stronger role, the union of permissions."""
    roles = {moving["role"], staying["role"] if staying else moving["role"]}
    permissions = set(moving["permissions"]) | set(staying["permissions"] if staying else ())
    role = Role.ORG_ADMIN if Role.ORG_ADMIN in roles else Role.ORG_USER
    return {"user_id": moving["user_id"], "role": role.value, "permissions": sorted(permissions)}


def _brief(org: RowMapping) -> dict[str, Any]:
    return {"id": str(org["id"]), "slug": org["slug"], "kind": org["kind"]}


async def _carry_out(
    conn: AsyncConnection, plan: dict[str, Any], src: RowMapping, dst: RowMapping, caller: Caller
) -> None:
    for membership in plan["memberships"]:
        await sql.put_membership(
            conn,
            user_id=membership["user_id"],
            org_id=dst["id"],
            role=membership["role"],
            permissions=membership["permissions"],
        )
    if plan["settings"]:
        await sql.update_organization(
            conn, dst["id"], settings={**plan["settings"], **dst["settings"]}
        )
    await sql.delete_organization(conn, src["id"])
    summary = plan["summary"]
    await repository.record_audit(
        conn,
        actor=caller.actor,
        action="organization.merged",
        organization_id=dst["id"],
        data={k: summary[k] for k in summary if k not in ("target", "max_users")},
    )

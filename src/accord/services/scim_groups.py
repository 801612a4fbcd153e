"""SCIM groups: an organization's Okta or Entra ID groups, and the roles they grant.

A group belongs to one organization (the SCIM client's): a ``displayName`` unique within it,
case-insensitively (``ScimGroupNameTaken``), an ``externalId``, and members that are users this
same client provisioned (``services/scim.py``); any other id, another tenant's users included,
is refused as an invalid value and never linked (G10).

**Grants.** A platform administrator maps a group name to a role and permissions
(``accord scim-group map``, kept by name: it may be set before the IdP pushes the group). Every
change of a group's members or name recomputes, in the same transaction, the membership of each
person it touches whose groups grant something before or after: ``org_admin`` if any of their
groups in the organization grants it, else ``org_user``; the permissions are the union of their
groups' permissions. Groups that grant nothing never change anyone's role. A role change is the
membership change of ``services/members.py``: the organization is locked, a demotion passes
``services/leaving.py`` (the last ``org_admin`` of a team is not demoted: the whole group change
is refused, ``LastAdmin``), and it is audited ``membership.updated``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID, uuid4

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import Role
from accord.domain.records import AuditEvent, OrganizationRecord
from accord.domain.scim_store import (
    ScimGroupGrant,
    ScimGroupRecord,
    ScimGroupWrite,
    display_name_key,
)
from accord.domain.store import Transaction
from accord.services import leaving, members, scim
from accord.services.context import Context
from accord.services.ids import parse_id
from accord.services.provisioning import clean_permissions

MAX_DISPLAY_NAME_LENGTH = 256
MAX_MEMBERS = 1000


@dataclass(frozen=True)
class ScimGroupState:
    """What a SCIM client wants a group to be (a POST or PUT body, or a patched resource)."""

    display_name: str
    external_id: str | None = None
    members: tuple[str, ...] = ()  # the members' ``value``s, as sent


@dataclass(frozen=True)
class ScimGroup:
    """A SCIM client's group with its members that are still the client's users."""

    record: ScimGroupRecord
    members: tuple[scim.ScimUser, ...]


def _checked(state: ScimGroupState) -> ScimGroupState:
    name = state.display_name.strip()
    if not name or len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise errors.InvalidInput(f"displayName must be 1 to {MAX_DISPLAY_NAME_LENGTH} characters.")
    if state.external_id is not None and len(state.external_id) > scim.MAX_EXTERNAL_ID_LENGTH:
        raise errors.InvalidInput(f"externalId is longer than {scim.MAX_EXTERNAL_ID_LENGTH}.")
    if len(state.members) > MAX_MEMBERS:
        raise errors.InvalidInput(f"A group has at most {MAX_MEMBERS} members.")
    return ScimGroupState(name, state.external_id or None, tuple(dict.fromkeys(state.members)))


def _taken(display_name: str) -> errors.ScimGroupNameTaken:
    return errors.ScimGroupNameTaken(
        f"A group with the displayName {display_name!r} already exists in this organization."
    )


def _missing(group_id: object) -> errors.ScimGroupNotFound:
    return errors.ScimGroupNotFound(f"No group {group_id}.")


# -- reads ---------------------------------------------------------------------------------------


async def _shown(tx: Transaction, record: ScimGroupRecord) -> ScimGroup:
    """The group with the members that are still live SCIM users of its organization."""
    found = [await scim.provisioned(tx, record.organization_id, uid) for uid in record.members]
    return ScimGroup(record, tuple(user for user in found if user is not None))


async def get_scim_group(accord: Context, group_id: str | UUID, *, caller: Caller) -> ScimGroup:
    """One of the caller's groups; ScimGroupNotFound for any other (G10)."""
    org_id = scim.organization_of(caller)
    gid = parse_id(group_id, "The group id")
    async with accord.store.transaction() as tx:
        record = await tx.scim_groups.get(org_id, gid)
        if record is None:
            raise _missing(gid)
        return await _shown(tx, record)


async def list_scim_groups(
    accord: Context, *, caller: Caller, display_name: str | None = None
) -> list[ScimGroup]:
    """The caller's groups, oldest first; only the one of ``display_name`` if given (the IdPs'
    lookup before a create, one indexed read)."""
    org_id = scim.organization_of(caller)
    async with accord.store.transaction() as tx:
        if display_name is not None:
            one = await tx.scim_groups.by_display_name(org_id, display_name)
            records = [one] if one is not None else []
        else:
            records = await tx.scim_groups.list(org_id)
        return [await _shown(tx, record) for record in records]


# -- writes --------------------------------------------------------------------------------------


async def create_scim_group(accord: Context, state: ScimGroupState, *, caller: Caller) -> ScimGroup:
    """Create a group. The same group pushed again (same displayName and externalId: a create
    retried after a timeout) answers the existing one; another one with that name is refused."""
    org_id = scim.organization_of(caller)
    state = _checked(state)
    async with accord.store.transaction() as tx:
        org = await _lock(tx, org_id)
        current = await tx.scim_groups.by_display_name(org_id, state.display_name)
        if current is not None:
            if state.external_id is None or current.external_id != state.external_id:
                raise _taken(state.display_name)
            return await _shown(tx, current)
        write = await _write_of(tx, org_id, state)
        record = await tx.scim_groups.create(group_id=uuid4(), organization_id=org_id, write=write)
        if record is None:
            raise _taken(state.display_name)
        await _regrant(tx, caller, org, None, record)
        await _audit(tx, caller, "scim_group.created", record)
        return await _shown(tx, record)


async def replace_scim_group(
    accord: Context, group_id: str | UUID, state: ScimGroupState, *, caller: Caller
) -> ScimGroup:
    """Make the group what ``state`` says: its name, externalId and whole member list."""
    return await update_scim_group(accord, group_id, lambda _: state, caller=caller)


async def update_scim_group(
    accord: Context,
    group_id: str | UUID,
    change: Callable[[ScimGroup], ScimGroupState],
    *,
    caller: Caller,
) -> ScimGroup:
    """Make the group what ``change`` says of it as it is now (a PATCH), read under the
    organization's lock: two changes at once both hold, the second applied to the first's
    result."""
    org_id = scim.organization_of(caller)
    gid = parse_id(group_id, "The group id")
    async with accord.store.transaction() as tx:
        org = await _lock(tx, org_id)
        before = await tx.scim_groups.get(org_id, gid)
        if before is None:
            raise _missing(gid)
        state = _checked(change(await _shown(tx, before)))
        write = await _write_of(tx, org_id, state, keep=before.members)
        if not await tx.scim_groups.replace(gid, write):
            raise _taken(state.display_name)
        after = await tx.scim_groups.get(org_id, gid)
        assert after is not None
        await _regrant(tx, caller, org, before, after)
        await _audit(tx, caller, "scim_group.updated", after)
        return await _shown(tx, after)


async def delete_scim_group(accord: Context, group_id: str | UUID, *, caller: Caller) -> None:
    """Delete the group; what it granted its members is recomputed without it."""
    org_id = scim.organization_of(caller)
    gid = parse_id(group_id, "The group id")
    async with accord.store.transaction() as tx:
        org = await _lock(tx, org_id)
        before = await tx.scim_groups.get(org_id, gid)
        if before is None:
            raise _missing(gid)
        await tx.scim_groups.delete(gid)
        await _regrant(tx, caller, org, before, None)
        await _audit(tx, caller, "scim_group.deleted", before)


async def _lock(tx: Transaction, org_id: UUID) -> OrganizationRecord:
    """The organization, locked against other membership changes (as members.py does)."""
    locked = await leaving.lock(tx, [org_id])
    if org_id not in locked:
        raise errors.OrganizationNotFound(f"No organization {org_id}.")
    return locked[org_id]


async def _write_of(
    tx: Transaction, org_id: UUID, state: ScimGroupState, keep: Iterable[UUID] = ()
) -> ScimGroupWrite:
    """The row to write; every member must be a live SCIM user of this organization. Members
    already stored that are not live any more (``keep``) stay, unseen, until removed."""
    kept = set(keep)
    ids: list[UUID] = []
    for value in state.members:
        uid = _member_id(value)
        if uid not in kept and await scim.provisioned(tx, org_id, uid) is None:
            raise _foreign(value)
        ids.append(uid)
    return ScimGroupWrite(state.display_name, state.external_id, tuple(ids))


def _member_id(value: str) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        raise _foreign(value) from None


def _foreign(value: object) -> errors.InvalidInput:
    return errors.InvalidInput(
        f"members: {value!r} is not a user of this organization's SCIM client; provision the "
        "user first (POST /Users), then add it to the group."
    )


async def _audit(tx: Transaction, caller: Caller, action: str, record: ScimGroupRecord) -> None:
    await tx.audit.record(
        AuditEvent(
            **caller.audit_fields(),
            action=action,
            organization_id=record.organization_id,
            data={
                "group_id": str(record.id),
                "display_name": record.display_name,
                "members": len(record.members),
            },
        )
    )


# -- grants --------------------------------------------------------------------------------------


def _granting(grants: dict[str, ScimGroupGrant], record: ScimGroupRecord | None) -> bool:
    return record is not None and display_name_key(record.display_name) in grants


async def _regrant(
    tx: Transaction,
    caller: Caller,
    org: OrganizationRecord,
    before: ScimGroupRecord | None,
    after: ScimGroupRecord | None,
) -> None:
    """Recompute the memberships of the people a group change touches, where the group grants
    something before or after the change."""
    grants = await tx.scim_groups.grants(org.id)
    touched: set[UUID] = set()
    for record in (before, after):
        if _granting(grants, record):
            assert record is not None
            touched |= set(record.members)
    if touched:
        await _recompute(tx, caller, org, grants, touched)


async def _recompute(
    tx: Transaction,
    caller: Caller,
    org: OrganizationRecord,
    grants: dict[str, ScimGroupGrant],
    user_ids: Iterable[UUID],
) -> None:
    groups = await tx.scim_groups.list(org.id)
    for uid in sorted(user_ids):
        current = await tx.memberships.get(uid, org.id)
        if current is None:
            continue  # not a member (any more): nothing to grant
        given = [
            grants[key]
            for group in groups
            if uid in group.members and (key := display_name_key(group.display_name)) in grants
        ]
        admin = any(grant.role == Role.ORG_ADMIN for grant in given)
        permissions = sorted({p for grant in given for p in grant.permissions})
        wanted = replace(
            current,
            role=Role.ORG_ADMIN if admin else Role.ORG_USER,
            permissions=tuple(permissions),
        )
        if wanted == current:
            continue
        try:
            await members.change_membership(tx, caller, org, current, wanted)
        except errors.LastAdmin:
            raise errors.LastAdmin(
                f"User {uid} is the last org_admin of {org.slug}, and this group change would "
                "take that role away: add another member to a group that grants org_admin (or "
                "make another member org_admin in accord) first.",
                organization_id=str(org.id),
            ) from None


async def map_group(
    accord: Context,
    organization_id: str | UUID,
    display_name: str,
    *,
    role: str | Role,
    permissions: Iterable[str] = (),
    caller: Caller,
) -> dict[str, Any]:
    """Make membership of the group ``display_name`` grant ``role`` and ``permissions`` in the
    organization; the members of such a group, if it exists, get it at once."""
    org_id = parse_id(organization_id, "The organization id")
    name = _checked(ScimGroupState(display_name)).display_name
    try:
        wanted_role = Role(role)
    except ValueError:
        raise errors.InvalidInput("role must be org_admin or org_user.") from None
    grant = ScimGroupGrant(org_id, name, wanted_role, tuple(clean_permissions(list(permissions))))
    async with accord.store.transaction() as tx:
        org = await _lock(tx, org_id)
        await tx.scim_groups.put_grant(grant)
        await _regrant_name(tx, caller, org, name)
    return grant_json(grant)


async def unmap_group(
    accord: Context, organization_id: str | UUID, display_name: str, *, caller: Caller
) -> None:
    """Remove the grant of ``display_name``; its members' memberships are recomputed."""
    org_id = parse_id(organization_id, "The organization id")
    async with accord.store.transaction() as tx:
        org = await _lock(tx, org_id)
        group = await tx.scim_groups.by_display_name(org_id, display_name)
        if not await tx.scim_groups.remove_grant(org_id, display_name):
            raise errors.InvalidInput(f"No grant for the group {display_name!r}.")
        if group is not None and group.members:
            grants = await tx.scim_groups.grants(org_id)
            await _recompute(tx, caller, org, grants, group.members)


async def list_grants(accord: Context, organization_id: str | UUID) -> list[dict[str, Any]]:
    """The organization's group grants, by name."""
    org_id = parse_id(organization_id, "The organization id")
    async with accord.store.transaction() as tx:
        grants = await tx.scim_groups.grants(org_id)
    return [grant_json(g) for g in sorted(grants.values(), key=lambda g: g.display_name)]


async def _regrant_name(
    tx: Transaction, caller: Caller, org: OrganizationRecord, display_name: str
) -> None:
    group = await tx.scim_groups.by_display_name(org.id, display_name)
    if group is not None and group.members:
        grants = await tx.scim_groups.grants(org.id)
        await _recompute(tx, caller, org, grants, group.members)


def grant_json(grant: ScimGroupGrant) -> dict[str, Any]:
    return {
        "organization_id": str(grant.organization_id),
        "group": grant.display_name,
        "role": grant.role.value,
        "permissions": list(grant.permissions),
    }

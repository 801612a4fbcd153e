"""Creating team organizations (platform admins only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast
from uuid import UUID, uuid4

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import OrganizationKind, OrganizationStatus
from accord.domain.records import AuditEvent, NewOrganizationRecord, OrganizationRecord
from accord.domain.slugs import require_visible_name, slug_candidates, slugify
from accord.domain.store import OrganizationChanges, Transaction
from accord.services.context import Context
from accord.services.ids import parse_id
from accord.services.views import organization_json

MAX_MAX_USERS = 100_000
MAX_DISPLAY_NAME = 200


@dataclass(frozen=True)
class NewOrganization:
    name: str
    display_name: str | None = None
    plan_type: str = "trial"
    max_users: int = 10
    status: OrganizationStatus = OrganizationStatus.TRIAL
    settings: dict[str, Any] = field(default_factory=dict)


async def create_organization(
    accord: Context, request: NewOrganization, *, caller: Caller, suffix: bool = True
) -> dict[str, Any]:
    """Create a team organization; its slug comes from the name, suffixed ("-2", …) if taken.

    ``suffix=False`` (find-or-create by name, as the importer does) raises OrganizationExists
    instead when the name's own slug is taken.
    """
    caller.require_platform()
    name = " ".join((request.name or "").split())
    if not name or len(name) > 100:
        raise errors.InvalidInput("The organization name must be 1 to 100 characters.")
    require_visible_name(name)
    display_name = _display_name(request.display_name) if request.display_name else name
    if not 1 <= request.max_users <= MAX_MAX_USERS:
        raise errors.InvalidInput(f"max_users must be between 1 and {MAX_MAX_USERS}.")
    async with accord.store.transaction() as tx:
        org = await _insert_with_free_slug(tx, request, name, display_name, suffix=suffix)
        await tx.audit.record(
            AuditEvent(
                **caller.audit_fields(),
                action="organization.created",
                organization_id=org.id,
                data={"slug": org.slug, "kind": "team", "max_users": request.max_users},
            )
        )
    return organization_json(org, members=0)


async def _insert_with_free_slug(
    tx: Transaction, request: NewOrganization, name: str, display_name: str, *, suffix: bool
) -> OrganizationRecord:
    """Insert under the name's slug, or the next free suffix: the unique index settles races."""
    base = slugify(name)
    for slug in slug_candidates(base):
        if not suffix and slug != base:
            raise errors.OrganizationExists(
                f"An organization with the slug {base!r} already exists; choose another name."
            )
        org = await tx.organizations.insert(
            NewOrganizationRecord(
                id=uuid4(),
                slug=slug,
                display_name=display_name,
                kind=OrganizationKind.TEAM,
                plan_type=request.plan_type or "trial",
                max_users=request.max_users,
                status=OrganizationStatus(request.status),
                settings=request.settings,
            )
        )
        if org is not None:
            return org
    raise AssertionError("unreachable: slug candidates are endless")


@dataclass(frozen=True)
class OrganizationUpdate:
    """What a PATCH of an organization may change; None leaves a field as it is."""

    display_name: str | None = None
    max_users: int | None = None
    status: OrganizationStatus | str | None = None


async def update_organization(
    accord: Context, organization_id: str | UUID, change: OrganizationUpdate, *, caller: Caller
) -> dict[str, Any]:
    """Change an organization's display name, member limit or status; its version grows.

    A platform caller may change all three; an organization's own token only its display name
    (its limit and status are the platform's to decide: Forbidden). Another organization answers
    OrganizationNotFound, as a missing one does (G10). ``max_users`` below the seats taken
    (members, and places held by creations still running, counted under the seat lock) raises
    LimitBelowUsage.
    """
    org_id = parse_id(organization_id, "The organization id")
    if not caller.can_manage(org_id):
        raise errors.OrganizationNotFound(f"No organization {org_id}.")
    if not caller.is_platform and (change.max_users is not None or change.status is not None):
        raise errors.Forbidden(
            "An organization token may change only its organization's display_name; max_users "
            "and status need a platform token."
        )
    wanted = _wanted(change)
    async with accord.store.transaction() as tx:
        locked = await tx.organizations.lock_seats(org_id)
        if locked is None:
            raise errors.OrganizationNotFound(f"No organization {org_id}.")
        org, taken = locked
        limit = wanted.get("max_users")
        if limit is not None and limit < taken:
            raise errors.LimitBelowUsage(
                f"{taken} seats of {org.slug} are taken (members and creations in progress): "
                f"max_users cannot be {limit}; remove members first.",
                seats_taken=taken,
            )
        changes = cast(
            OrganizationChanges, {k: v for k, v in wanted.items() if getattr(org, k) != v}
        )
        if changes:
            org = await _apply(tx, caller, org, changes)
        members = await tx.memberships.count(org_id)
    return organization_json(org, members=members)


def _display_name(text: str) -> str:
    """A display name as kept and shown: whitespace runs (line breaks too: the name goes into
    mail subjects) folded to one space, 1 to MAX_DISPLAY_NAME visible characters."""
    name = " ".join(text.split())
    if not name or len(name) > MAX_DISPLAY_NAME:
        raise errors.InvalidInput(f"The display name must be 1 to {MAX_DISPLAY_NAME} characters.")
    require_visible_name(name, "The display name")
    return name


def _wanted(change: OrganizationUpdate) -> OrganizationChanges:
    wanted: OrganizationChanges = {}
    if change.display_name is not None:
        wanted["display_name"] = _display_name(change.display_name)
    if change.max_users is not None:
        if not 1 <= change.max_users <= MAX_MAX_USERS:
            raise errors.InvalidInput(f"max_users must be between 1 and {MAX_MAX_USERS}.")
        wanted["max_users"] = change.max_users
    if change.status is not None:
        try:
            wanted["status"] = OrganizationStatus(change.status).value
        except ValueError:
            allowed = ", ".join(s.value for s in OrganizationStatus)
            raise errors.InvalidInput(f"The status must be one of {allowed}.") from None
    return wanted


async def _apply(
    tx: Transaction, caller: Caller, org: OrganizationRecord, changes: OrganizationChanges
) -> OrganizationRecord:
    updated = await tx.organizations.update(org.id, **changes)
    assert updated is not None, "the row is locked"
    await tx.audit.record(
        AuditEvent(
            **caller.audit_fields(),
            action="organization.updated",
            organization_id=org.id,
            data={
                "changes": {k: {"from": getattr(org, k), "to": v} for k, v in changes.items()},
                "version": updated.version,
            },
        )
    )
    return updated

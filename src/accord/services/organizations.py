"""Creating team organizations (platform admins only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import OrganizationKind, OrganizationStatus
from accord.domain.records import AuditEvent, NewOrganizationRecord, OrganizationRecord
from accord.domain.slugs import require_visible_name, slug_candidates, slugify
from accord.domain.store import Transaction
from accord.services.context import Context
from accord.services.views import organization_json

MAX_MAX_USERS = 100_000


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
    if not 1 <= request.max_users <= MAX_MAX_USERS:
        raise errors.InvalidInput(f"max_users must be between 1 and {MAX_MAX_USERS}.")
    async with accord.store.transaction() as tx:
        org = await _insert_with_free_slug(tx, request, name, suffix=suffix)
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
    tx: Transaction, request: NewOrganization, name: str, *, suffix: bool
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
                display_name=request.display_name or name,
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

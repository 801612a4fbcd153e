"""Creating team organizations (platform admins only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import OrganizationKind, OrganizationStatus
from accord.domain.records import AuditEvent, NewOrganizationRecord
from accord.domain.slugs import slugify
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
    accord: Context, request: NewOrganization, *, caller: Caller
) -> dict[str, Any]:
    """Create a team organization; its slug comes from the name (OrganizationExists if taken)."""
    caller.require_platform()
    name = " ".join((request.name or "").split())
    if not name or len(name) > 100:
        raise errors.InvalidInput("The organization name must be 1 to 100 characters.")
    if not 1 <= request.max_users <= MAX_MAX_USERS:
        raise errors.InvalidInput(f"max_users must be between 1 and {MAX_MAX_USERS}.")
    slug = slugify(name)
    async with accord.store.transaction() as tx:
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
        if org is None:
            raise errors.OrganizationExists(
                f"An organization with the slug {slug!r} already exists; choose another name."
            )
        await tx.audit.record(
            AuditEvent(
                actor=caller.actor,
                action="organization.created",
                organization_id=org.id,
                data={"slug": slug, "kind": "team", "max_users": request.max_users},
            )
        )
    return organization_json(org, members=0)

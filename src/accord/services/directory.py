"""Reading users and organizations (no scope checks: see ``services/reads.py`` for callers)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from accord.domain.errors import OrganizationNotFound, UserNotFound
from accord.services.context import Context
from accord.services.ids import parse_id
from accord.services.views import summary_json, user_json

__all__ = ["get_organization", "get_user", "list_organizations", "parse_id"]


async def list_organizations(accord: Context) -> list[dict[str, Any]]:
    """Every organization with its member count."""
    async with accord.store.transaction() as tx:
        return [summary_json(s) for s in await tx.organizations.summaries()]


async def get_organization(accord: Context, organization_id: str | UUID) -> dict[str, Any]:
    """One organization; OrganizationNotFound if there is none."""
    org_id = parse_id(organization_id, "The organization id")
    async with accord.store.transaction() as tx:
        summary = await tx.organizations.summary(org_id)
    if summary is None:
        raise OrganizationNotFound(f"No organization {org_id}.")
    return summary_json(summary)


async def get_user(accord: Context, user_id: str | UUID) -> dict[str, Any]:
    """One user with memberships; UserNotFound if there is none."""
    uid = parse_id(user_id, "The user id")
    async with accord.store.transaction() as tx:
        view = await tx.users.view(uid)
    if view is None:
        raise UserNotFound(f"No user {uid}.")
    return user_json(view)

"""Reading users and organizations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from accord.adapters.db import repository
from accord.domain.errors import InvalidInput, OrganizationNotFound, UserNotFound

if TYPE_CHECKING:
    from accord.bootstrap import Accord


def parse_id(value: str | UUID, what: str) -> UUID:
    """``value`` as a UUID; InvalidInput naming ``what`` if it is not one."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise InvalidInput(f"{what} must be a UUID, not {value!r}.") from None


async def list_organizations(accord: Accord) -> list[dict[str, Any]]:
    """Every organization with its member count."""
    async with accord.db.transaction() as conn:
        return await repository.list_organizations(conn)


async def get_organization(accord: Accord, organization_id: str | UUID) -> dict[str, Any]:
    """One organization; OrganizationNotFound if there is none."""
    org_id = parse_id(organization_id, "The organization id")
    async with accord.db.transaction() as conn:
        org = await repository.get_organization(conn, org_id)
    if org is None:
        raise OrganizationNotFound(f"No organization {org_id}.")
    return org


async def list_users(
    accord: Accord, *, organization_id: str | UUID | None = None, email: str | None = None
) -> list[dict[str, Any]]:
    """Users, optionally only the members of one organization, with their memberships."""
    org_id = parse_id(organization_id, "The organization id") if organization_id else None
    async with accord.db.transaction() as conn:
        if org_id is not None and await repository.get_organization(conn, org_id) is None:
            raise OrganizationNotFound(f"No organization {org_id}.")
        return await repository.list_users(conn, organization_id=org_id, email=email)


async def get_user(accord: Accord, user_id: str | UUID) -> dict[str, Any]:
    """One user with memberships; UserNotFound if there is none."""
    uid = parse_id(user_id, "The user id")
    async with accord.db.transaction() as conn:
        user = await repository.get_user(conn, uid)
    if user is None:
        raise UserNotFound(f"No user {uid}.")
    return user

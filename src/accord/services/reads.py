"""Reads on behalf of a caller: an organization-scoped caller sees only its own organization
and its members (G10); lists of users come in pages, with an opaque cursor."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from uuid import UUID

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.emails import normalize_email
from accord.services import directory
from accord.services.context import Context
from accord.services.ids import parse_id
from accord.services.views import summary_json, user_json

MAX_PAGE_SIZE = 200


def encode_cursor(user_id: str) -> str:
    """The opaque cursor that continues a listing after ``user_id``."""
    return base64.urlsafe_b64encode(UUID(user_id).bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> UUID:
    """The user id a cursor continues after; InvalidInput if it is not a cursor we made."""
    try:
        return UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise errors.InvalidInput("The cursor is not valid: use next_cursor as given.") from None


async def list_organizations(accord: Context, *, caller: Caller) -> list[dict[str, Any]]:
    """Every organization for a platform caller; only its own for an organization caller."""
    if caller.is_platform:
        return await directory.list_organizations(accord)
    assert caller.organization_id is not None
    async with accord.store.transaction() as tx:
        return [summary_json(s) for s in await tx.organizations.summaries([caller.organization_id])]


async def get_organization(
    accord: Context, organization_id: str | UUID, *, caller: Caller
) -> dict[str, Any]:
    """One organization the caller may see (Forbidden for another tenant's)."""
    org_id = parse_id(organization_id, "The organization id")
    caller.require_organization(org_id)
    return await directory.get_organization(accord, org_id)


async def get_user(accord: Context, user_id: str | UUID, *, caller: Caller) -> dict[str, Any]:
    """One user; an organization caller may only see members of its organization."""
    user = await directory.get_user(accord, user_id)
    if not caller.is_platform:
        orgs = {m["organization_id"] for m in user.get("organizations") or []}
        if str(caller.organization_id) not in orgs:  # G10: answered as a missing user is
            raise errors.UserNotFound(f"No user {user['id']}.")
    return user


async def list_users_page(
    accord: Context,
    *,
    caller: Caller,
    organization_id: str | UUID | None = None,
    email: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """A page of users: ``{"items": [...], "next_cursor": str | None}``, ordered by id."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise errors.InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}.")
    org_id = parse_id(organization_id, "The organization id") if organization_id else None
    if not caller.is_platform:
        org_id = org_id or caller.organization_id
        assert org_id is not None, "an organization caller has an organization"
        caller.require_organization(org_id)
    after = decode_cursor(cursor) if cursor else None
    address = normalize_email(email) if email is not None else None
    async with accord.store.transaction() as tx:
        if org_id is not None and await tx.organizations.get(org_id) is None:
            raise errors.OrganizationNotFound(f"No organization {org_id}.")
        views = await tx.users.list(
            organization_id=org_id, email=address, after=after, limit=limit + 1
        )
    more = len(views) > limit
    items = [user_json(v) for v in views[:limit]]
    return {"items": items, "next_cursor": encode_cursor(items[-1]["id"]) if more else None}

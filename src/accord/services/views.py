"""JSON documents of records: what the API answers and what operations store as results.

Ids and timestamps become text, so a document stored in an operation's result replays exactly
as it was first answered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from accord.domain.records import (
    ApiTokenRecord,
    MemberRecord,
    MembershipRecord,
    OrganizationRecord,
    OrganizationSummary,
    UserView,
)


def _text(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def membership_json(membership: MembershipRecord) -> dict[str, Any]:
    return {
        "organization_id": str(membership.organization_id),
        "role": membership.role.value,
        "permissions": list(membership.permissions),
    }


def user_json(view: UserView) -> dict[str, Any]:
    """A user with its memberships (``organizations``)."""
    user = view.user
    return {
        "id": str(user.id),
        "email": user.email,
        "full_name": user.full_name,
        "status": user.status.value,
        "is_platform_admin": user.is_platform_admin,
        "require_password_change": user.require_password_change,
        "created_by": user.created_by,
        "created_at": _text(user.created_at),
        "updated_at": _text(user.updated_at),
        "organizations": [membership_json(m) for m in view.memberships],
    }


def organization_json(org: OrganizationRecord, members: int | None = None) -> dict[str, Any]:
    """An organization (with its member count, when known)."""
    document = {
        "id": str(org.id),
        "slug": org.slug,
        "display_name": org.display_name,
        "kind": org.kind.value,
        "owner_user_id": _text(org.owner_user_id),
        "plan_type": org.plan_type,
        "max_users": org.max_users,
        "status": str(org.status),
        "settings": org.settings,
        "version": org.version,
        "created_at": _text(org.created_at),
        "updated_at": _text(org.updated_at),
    }
    if members is not None:
        document["members"] = members
    return document


def summary_json(summary: OrganizationSummary) -> dict[str, Any]:
    return organization_json(summary.organization, summary.members)


def api_token_json(token: ApiTokenRecord) -> dict[str, Any]:
    """An API token's record (never its digest)."""
    return {
        "id": str(token.id),
        "name": token.name,
        "scope": token.scope.value,
        "organization_id": _text(token.organization_id),
        "created_at": _text(token.created_at),
        "revoked_at": _text(token.revoked_at),
    }


def member_json(member: MemberRecord) -> dict[str, Any]:
    """One member of an organization: the user, their e-mail, role and permissions."""
    membership = member.membership
    return {
        "user_id": str(membership.user_id),
        "organization_id": str(membership.organization_id),
        "email": member.email,
        "role": membership.role.value,
        "permissions": list(membership.permissions),
    }

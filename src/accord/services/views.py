"""JSON documents of records: what the API answers and what operations store as results.

Ids and timestamps become text, so a document stored in an operation's result replays exactly
as it was first answered.
"""

from __future__ import annotations

from typing import Any

from accord.domain.documents import (
    membership_json,
    organization_json,
    user_json,
)
from accord.domain.documents import (
    text as _text,
)
from accord.domain.records import ApiTokenRecord, MemberRecord, OrganizationSummary

__all__ = [
    "api_token_json",
    "member_json",
    "membership_json",
    "organization_json",
    "summary_json",
    "user_json",
]


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

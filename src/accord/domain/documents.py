"""JSON documents of records, as the API shows them: pure functions of the records.

``services/views.py`` answers requests with them, and the change feed (``domain/changes.py``)
carries the same documents in its events, so a consumer sees what a read of the subject shows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from accord.domain.invitation_store import InvitationRecord
from accord.domain.model import InvitationStatus
from accord.domain.records import MembershipRecord, OrganizationRecord, UserView


def text(value: Any) -> Any:
    """Ids and timestamps as text (other values unchanged)."""
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
        "created_at": text(user.created_at),
        "updated_at": text(user.updated_at),
        "organizations": [membership_json(m) for m in view.memberships],
    }


def organization_json(org: OrganizationRecord, members: int | None = None) -> dict[str, Any]:
    """An organization (with its member count, when known)."""
    document = {
        "id": str(org.id),
        "slug": org.slug,
        "display_name": org.display_name,
        "kind": org.kind.value,
        "owner_user_id": text(org.owner_user_id),
        "plan_type": org.plan_type,
        "max_users": org.max_users,
        "status": str(org.status),
        "settings": org.settings,
        "version": org.version,
        "created_at": text(org.created_at),
        "updated_at": text(org.updated_at),
    }
    if members is not None:
        document["members"] = members
    return document


def effective_status(record: InvitationRecord, now: datetime) -> InvitationStatus:
    """A pending invitation past its time is expired, whether housekeeping marked it or not."""
    if record.status == InvitationStatus.PENDING and record.expires_at <= now:
        return InvitationStatus.EXPIRED
    return record.status


def invitation_json(record: InvitationRecord, now: datetime) -> dict[str, Any]:
    """An invitation as the admin API shows it (never its link)."""
    return {
        "id": str(record.id),
        "organization_id": str(record.organization_id),
        "email": record.email,
        "role": record.role.value,
        "permissions": list(record.permissions),
        "status": effective_status(record, now).value,
        "expires_at": record.expires_at,
        "invited_by": record.invited_by,
        "accepted_user_id": str(record.accepted_user_id) if record.accepted_user_id else None,
        "created_at": record.created_at,
        "accepted_at": record.accepted_at,
        "revoked_at": record.revoked_at,
    }

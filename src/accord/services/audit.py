"""Reading the audit trail: "who did this", scoped like every read (G10).

An organization-scoped caller sees the events of its own organization only; naming another
organization gives an empty page, the same as naming one that does not exist. Pages come in
(at, id) order with an opaque cursor.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.records import AuditEntry, AuditQuery
from accord.services.context import Context

MAX_PAGE_SIZE = 200
MAX_ACTION_LENGTH = 100


@dataclass(frozen=True)
class AuditFilter:
    """What to list; ``None`` matches anything. ``until`` is exclusive."""

    organization_id: UUID | None = None
    user_id: UUID | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_audit_events(
    accord: Context,
    wanted: AuditFilter,
    *,
    caller: Caller,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """A page of audit events: ``{"items": [...], "next_cursor": str | None}``."""
    query = _query(wanted, caller, cursor, limit)
    if query is None:
        return {"items": [], "next_cursor": None}
    async with accord.store.transaction() as tx:
        entries = await tx.audit.query(query)
    page, more = entries[:limit], len(entries) > limit
    return {
        "items": [audit_json(e) for e in page],
        "next_cursor": encode_cursor(page[-1]) if more else None,
    }


def _query(
    wanted: AuditFilter, caller: Caller, cursor: str | None, limit: int
) -> AuditQuery | None:
    """The store query, or None when the caller may see nothing of what it asked for."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise errors.InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}.")
    if wanted.action is not None and not 1 <= len(wanted.action) <= MAX_ACTION_LENGTH:
        raise errors.InvalidInput(f"action must be 1 to {MAX_ACTION_LENGTH} characters.")
    if wanted.since and wanted.until and _aware(wanted.since) >= _aware(wanted.until):
        raise errors.InvalidInput("since must be earlier than until.")
    organization_id = wanted.organization_id
    if not caller.is_platform:
        if organization_id is not None and organization_id != caller.organization_id:
            return None  # another tenant's: the same empty page as an unknown id
        organization_id = caller.organization_id
    return AuditQuery(
        organization_id=organization_id,
        user_id=wanted.user_id,
        action=wanted.action,
        since=_aware(wanted.since) if wanted.since else None,
        until=_aware(wanted.until) if wanted.until else None,
        after=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise errors.InvalidInput("Times need a UTC offset (ISO 8601, e.g. 2026-12-02T10:00:00Z).")
    return moment


def encode_cursor(entry: AuditEntry) -> str:
    """The opaque cursor that continues a listing after ``entry``."""
    raw = json.dumps([entry.at.isoformat(), entry.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (at, id) a cursor continues after; InvalidInput if it is not a cursor we made."""
    try:
        at, entry_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(at)
        if not isinstance(entry_id, int) or moment.tzinfo is None:
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error):
        raise errors.InvalidInput("The cursor is not valid: use next_cursor as given.") from None
    return moment, entry_id


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """An audit event as the API and the CLI show it."""
    event = entry.event
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "action": event.action,
        "actor": event.actor,
        "principal": event.by.to_json(),
        "claimed_actor": event.claimed_actor,
        "subject_user_id": str(event.subject_user_id) if event.subject_user_id else None,
        "subject_email": event.subject_email,
        "organization_id": str(event.organization_id) if event.organization_id else None,
        "operation_id": str(event.operation_id) if event.operation_id else None,
        "data": event.data,
    }

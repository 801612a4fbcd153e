"""Reading the change feed: every committed change once, in order, scoped like every read (G12).

Events are written with their change (``domain/changes.py``) and numbered after commit
(``assign_positions``; ``adapters/db/events.py`` says why that leaves no gap). A reader pages
with ``after`` (a position; ``next_cursor`` of the previous page) and never misses an event,
nor sees one twice; a subject's events come in the order of its versions.

An organization-scoped caller sees its organization's events only (a user's events reach
every organization the user belongs to); naming another organization gives an empty page, the
same as naming one that does not exist (G10). Housekeeping deletes events older than
``events_retention_days``; a cursor from before the oldest kept event answers
``cursor_expired`` (410): the reader has missed events and must start again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.changes import EVENT_TYPES
from accord.domain.records import ChangeEvent, FeedQuery
from accord.services.context import Context

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100
ASSIGN_BATCH = 5000
_MAX_CURSOR = 2**62


async def assign_positions(accord: Context) -> int:
    """Number the committed events that have no feed position yet (one assigner at a time:
    if another is at work, this returns at once). How many it numbered."""
    total = 0
    while True:
        async with accord.store.transaction() as tx:
            assigned = await tx.events.assign(limit=ASSIGN_BATCH)
        total += assigned or 0
        if assigned is None or assigned < ASSIGN_BATCH:
            return total


async def read_feed(
    accord: Context,
    *,
    caller: Caller,
    after: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    types: Sequence[str] = (),
    organization_id: UUID | None = None,
) -> dict[str, Any]:
    """A page: ``{"items": [...], "next_cursor": str, "has_more": bool}``. ``next_cursor``
    continues after the page (the same cursor when nothing new has come)."""
    query = _query(caller, after, limit, types, organization_id)
    cursor = str(query.after if query is not None else _position(after))
    if query is None:
        return {"items": [], "next_cursor": cursor, "has_more": False}
    await assign_positions(accord)
    async with accord.store.transaction() as tx:
        found = await tx.events.page(query)
        # Read after the page: retention only moves forward, so a horizon not past the cursor
        # now was not past it when the page was read.
        horizon = await tx.events.horizon()
    if after is not None and query.after < horizon:
        raise errors.CursorExpired(
            f"The cursor {after} is older than the events the feed keeps (retention deleted "
            f"those up to {horizon}): events were missed. Resynchronise from the API, then "
            f"read on with after={horizon}.",
            oldest_cursor=str(horizon),
        )
    page = found[:limit]
    next_cursor = str(page[-1].position) if page else cursor
    return {
        "items": [event_json(e) for e in page],
        "next_cursor": next_cursor,
        "has_more": len(found) > limit,
    }


def _query(
    caller: Caller,
    after: str | None,
    limit: int,
    types: Sequence[str],
    organization_id: UUID | None,
) -> FeedQuery | None:
    """The store query, or None when the caller may see nothing of what it asked for."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise errors.InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}.")
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if unknown:
        raise errors.InvalidInput(
            f"Unknown event type {unknown[0]!r}; the types are: {', '.join(EVENT_TYPES)}."
        )
    if not caller.is_platform:
        if organization_id is not None and organization_id != caller.organization_id:
            return None  # another tenant's: the same empty page as an unknown id
        organization_id = caller.organization_id
    return FeedQuery(
        after=_position(after),
        limit=limit + 1,
        types=tuple(sorted(set(types))),
        organization_id=organization_id,
    )


def _position(cursor: str | None) -> int:
    """The position a cursor continues after (none: from the oldest kept event)."""
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit()) or int(cursor) >= _MAX_CURSOR:
        raise errors.InvalidInput("The cursor is not valid: use next_cursor as given.")
    return int(cursor)


def event_json(event: ChangeEvent) -> dict[str, Any]:
    """An event as the feed, the CLI and (later) webhooks show it."""
    change = event.change

    def text(value: UUID | None) -> str | None:
        return str(value) if value is not None else None

    return {
        "id": str(change.id),
        "type": change.type,
        "sequence": event.position,
        "occurred_at": event.occurred_at.isoformat(),
        "organization_id": text(change.organization_id),
        "subject": {
            "type": change.subject_type,
            "id": change.subject_id,
            "user_id": text(change.user_id),
            "organization_id": text(
                change.organization_id if change.subject_type != "user" else None
            ),
            "invitation_id": text(change.invitation_id),
        },
        "version": change.version,
        "data": change.data,
        "changed": list(change.changed),
        "operation_id": text(change.operation_id),
        "idempotency_key": change.idempotency_key,
    }

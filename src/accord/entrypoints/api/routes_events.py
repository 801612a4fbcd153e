"""The change feed: every committed change once, in order, after a cursor (G12)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from accord.domain.changes import EVENT_TYPES
from accord.entrypoints.api.problems import AUTHENTICATED, DATABASE, documented
from accord.entrypoints.api.schemas_events import ChangeEventPage
from accord.entrypoints.api.security import AccordDep, AnyCaller
from accord.services import events

router = APIRouter(tags=["events"])


@router.get(
    "/api/events",
    response_model=ChangeEventPage,
    responses=documented("invalid_input", "cursor_expired", *AUTHENTICATED, *DATABASE),
    summary="Read the change feed after a cursor",
    description=(
        "Committed changes in sequence order, each exactly once: follow `next_cursor` (as "
        "`after`) and no event is ever missed, even when changes commit out of order. Each "
        "carries the subject's current document and its `version`, which grows with every "
        "change to the subject. An organization token sees its organization's events only "
        "(another organization's id gives an empty page). Events are kept "
        "`ACCORD_EVENTS_RETENTION_DAYS` (30); an older cursor answers 410 `cursor_expired`. "
        f"Types: {', '.join(f'`{t}`' for t in EVENT_TYPES)}."
    ),
)
async def read_events(
    accord: AccordDep,
    caller: AnyCaller,
    after: Annotated[
        str | None,
        Query(
            description="`next_cursor` of the previous page; none: from the oldest event.",
            pattern=r"^[0-9]{1,18}$",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=events.MAX_PAGE_SIZE)] = events.DEFAULT_PAGE_SIZE,
    types: Annotated[
        str | None,
        Query(
            description="Only these types, comma-separated (e.g. `user.created,user.updated`).",
            max_length=1000,
            pattern=r"^[a-z_.,]+$",
        ),
    ] = None,
    organization_id: Annotated[UUID | None, Query(description="Events of it.")] = None,
) -> dict[str, Any]:
    """A page of events and the cursor that continues after it."""
    wanted = tuple(t for t in (types or "").split(",") if t)
    return await events.read_feed(
        accord,
        caller=caller,
        after=after,
        limit=limit,
        types=wanted,
        organization_id=organization_id,
    )

"""The audit trail: who did what, to whom, when ("who did this"), scoped like every read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from accord.entrypoints.api.problems import AUTHENTICATED, DATABASE, documented
from accord.entrypoints.api.schemas import AuditEventPage
from accord.entrypoints.api.security import AccordDep, AnyCaller
from accord.services import audit

router = APIRouter(tags=["audit"])


@router.get(
    "/api/admin/audit-events",
    response_model=AuditEventPage,
    responses=documented("invalid_input", *AUTHENTICATED, *DATABASE),
    summary="List audit events, a page at a time",
    description=(
        "Ordered by time, then id (oldest first). Each event names the authenticated "
        "`principal` (the API token and its scope, or the signed-in user) and, apart from it, "
        "the `claimed_actor` the caller named in `X-Acting-User`. An organization token sees "
        "only its organization's events: another organization's id gives an empty page, as an "
        "unknown one does. Times are ISO 8601 with an offset; `until` is exclusive."
    ),
)
async def list_audit_events(
    accord: AccordDep,
    caller: AnyCaller,
    organization_id: Annotated[UUID | None, Query(description="Events of it.")] = None,
    user_id: Annotated[
        UUID | None, Query(description="Events about this user, or done by them signed in.")
    ] = None,
    action: Annotated[
        str | None,
        Query(
            description="Exactly this action, e.g. `user.created`.",
            max_length=audit.MAX_ACTION_LENGTH,
            pattern=r"^[a-z0-9_.]+$",
        ),
    ] = None,
    since: Annotated[datetime | None, Query(description="At or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Before (ISO 8601).")] = None,
    cursor: Annotated[
        str | None,
        Query(
            description="`next_cursor` of the previous page.",
            pattern=r"^[A-Za-z0-9_\-]{1,200}$",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE_SIZE)] = 50,
) -> dict[str, Any]:
    """A page of audit events and the cursor of the next."""
    wanted = audit.AuditFilter(organization_id, user_id, action, since, until)
    return await audit.list_audit_events(accord, wanted, caller=caller, cursor=cursor, limit=limit)

"""The change feed's documents (``GET /api/events``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field


class EventSubject(BaseModel):
    """Whom an event is about, and the ids that name it."""

    type: Literal["user", "organization", "membership", "invitation"]
    id: str = Field(description="The subject's id (a membership's is `user_id:organization_id`).")
    user_id: UUID | None
    organization_id: UUID | None
    invitation_id: UUID | None


class ChangeEventOut(BaseModel):
    """One committed change."""

    id: UUID = Field(description="The event's id: the same wherever it is delivered.")
    type: str = Field(description="e.g. `user.created`, `membership.removed`.")
    sequence: int = Field(description="Its place in the feed: every reader sees this order.")
    occurred_at: datetime
    organization_id: UUID | None
    subject: EventSubject
    version: int = Field(
        description="The subject's version: grows by one with every change to the subject. "
        "Apply an event only if it is newer than what you hold."
    )
    data: dict[str, Any] | None = Field(
        description="The subject as the API shows it after the change; null once it is gone."
    )
    changed: list[str] = Field(description="The fields this change set.")
    operation_id: UUID | None
    idempotency_key: str | None = Field(description="The key of the request that caused it.")


class ChangeEventPage(BaseModel):
    """One page of the feed, in sequence order."""

    items: list[ChangeEventOut]
    next_cursor: str = Field(
        description="Pass as `after` to continue (the same cursor when nothing new came)."
    )
    has_more: bool = Field(description="Whether more events are there already.")

"""Webhook endpoints' documents (``/api/admin/webhooks``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from accord.domain.changes import EVENT_TYPES
from accord.entrypoints.api.schemas import StrictBody

WebhookUrl = Annotated[
    str,
    Field(
        min_length=8,
        max_length=2000,
        pattern=r"^https?://[!-~]+$",
        description="Where to POST events: a public http(s) URL (private addresses are "
        "refused unless `ACCORD_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true`).",
    ),
]
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
EventTypes = Annotated[
    list[EventType],
    Field(max_length=len(EVENT_TYPES), description="Only these types; empty: every type."),
]


class NewWebhook(StrictBody):
    """An endpoint to deliver the change feed to."""

    url: WebhookUrl
    event_types: EventTypes = Field(default_factory=list)
    organization_id: UUID | None = Field(
        None,
        description="Only this organization's events (an organization token: always its own); "
        "none with a platform token: every event.",
    )


class WebhookPatch(StrictBody):
    """What to change; absent fields stay."""

    url: WebhookUrl | None = None
    event_types: EventTypes | None = None
    enabled: bool | None = Field(
        None, description="`true` enables a disabled endpoint again (its failures forgotten)."
    )


class WebhookReplay(StrictBody):
    """Deliver again every matching event after a feed position."""

    after: int = Field(ge=0, le=2**62, description="A feed `sequence` (0: every kept event).")


class Webhook(BaseModel):
    """A webhook endpoint (its secret is never shown again)."""

    id: UUID
    url: str
    event_types: list[str]
    organization_id: UUID | None
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None = Field(description="Failing since then without a success.")
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(Webhook):
    """A webhook endpoint and its signing secret, shown this once."""

    secret: str = Field(
        description="`whsec_…`: verify `webhook-signature` with it (Standard Webhooks). "
        "Shown only now; store it."
    )


class WebhookList(BaseModel):
    items: list[Webhook]


class WebhookDeleted(BaseModel):
    id: UUID
    deleted: bool


class WebhookReplayStarted(BaseModel):
    id: UUID
    replaying_after: int = Field(description="Events after this sequence are delivered again.")


class WebhookDeliveryOut(BaseModel):
    """One event's delivery to the endpoint."""

    id: int
    event_id: UUID = Field(description="The `webhook-id` header of every attempt.")
    event_type: str
    sequence: int
    status: Literal["pending", "succeeded", "failed"] = Field(
        description="`failed`: given up after the last retry (or the endpoint answered 410)."
    )
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None = Field(description="The HTTP status of the last attempt.")
    last_error: str | None
    latency_ms: float | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookDeliveryList(BaseModel):
    items: list[WebhookDeliveryOut]

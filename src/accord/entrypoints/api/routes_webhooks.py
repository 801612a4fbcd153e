"""Webhook endpoints: register, read, change, remove, rotate the secret, replay, deliveries.

A platform token manages every endpoint; an organization token its organization's only
(another organization's endpoint answers 404, like one that does not exist: G10)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from accord.entrypoints.api.problems import AUTHENTICATED, DATABASE, WITH_BODY, documented
from accord.entrypoints.api.schemas_webhooks import (
    NewWebhook,
    Webhook,
    WebhookDeleted,
    WebhookDeliveryList,
    WebhookList,
    WebhookPatch,
    WebhookReplay,
    WebhookReplayStarted,
    WebhookWithSecret,
)
from accord.entrypoints.api.security import AccordDep, AnyCaller, IdempotencyKey
from accord.services import webhooks

router = APIRouter(tags=["webhooks"])
ONE = "/api/admin/webhooks/{webhook_id}"
READ = ("invalid_input", "webhook_not_found", *AUTHENTICATED, *DATABASE)


@router.post(
    "/api/admin/webhooks",
    status_code=201,
    response_model=WebhookWithSecret,
    responses=documented(
        *WITH_BODY,
        "webhook_target_refused",
        "organization_not_found",
        "idempotency_key_reused",
        "operation_in_progress",
        *AUTHENTICATED,
        *DATABASE,
    ),
    summary="Register a webhook endpoint",
    description=(
        "Events committed from now on are POSTed to `url`, signed as Standard Webhooks v1 "
        "(`webhook-id` is the event id, the same on every retry). The answer holds the "
        "signing secret, shown only this once. **Idempotency**: a retry with the same "
        "`Idempotency-Key` answers the first request's endpoint and its signing secret again "
        "(201; the secret is the current one, should it have been rotated meanwhile) and "
        "registers nothing; the same key with another body answers 422 "
        "`idempotency_key_reused`, and while the first is still running 409."
    ),
)
async def create_webhook(
    body: NewWebhook, accord: AccordDep, caller: AnyCaller, key: IdempotencyKey
) -> dict[str, Any]:
    """Register an endpoint."""
    return await webhooks.register_endpoint(
        accord,
        caller,
        url=body.url,
        event_types=body.event_types,
        organization_id=body.organization_id,
        idempotency_key=key,
    )


@router.get(
    "/api/admin/webhooks",
    response_model=WebhookList,
    responses=documented(*AUTHENTICATED, *DATABASE),
    summary="List webhook endpoints",
)
async def list_webhooks(accord: AccordDep, caller: AnyCaller) -> dict[str, Any]:
    """The endpoints the caller manages, oldest first."""
    found = await webhooks.list_endpoints(accord, caller)
    return {"items": [webhooks.endpoint_json(e) for e in found]}


@router.get(ONE, response_model=Webhook, responses=documented(*READ), summary="Read a webhook")
async def read_webhook(webhook_id: UUID, accord: AccordDep, caller: AnyCaller) -> dict[str, Any]:
    """One endpoint."""
    return webhooks.endpoint_json(await webhooks.get_endpoint(accord, caller, webhook_id))


@router.patch(
    ONE,
    response_model=Webhook,
    responses=documented(*READ, "webhook_target_refused"),
    summary="Change a webhook endpoint (URL, types, enabled)",
)
async def update_webhook(
    webhook_id: UUID, body: WebhookPatch, accord: AccordDep, caller: AnyCaller
) -> dict[str, Any]:
    """Change what is given."""
    endpoint = await webhooks.update_endpoint(
        accord,
        caller,
        webhook_id,
        url=body.url,
        event_types=body.event_types,
        enabled=body.enabled,
    )
    return webhooks.endpoint_json(endpoint)


@router.delete(
    ONE, response_model=WebhookDeleted, responses=documented(*READ), summary="Remove a webhook"
)
async def delete_webhook(
    webhook_id: UUID, accord: AccordDep, caller: AnyCaller, key: IdempotencyKey
) -> dict[str, Any]:
    """Remove the endpoint; its pending deliveries are dropped."""
    await webhooks.delete_endpoint(accord, caller, webhook_id)
    return {"id": webhook_id, "deleted": True}


@router.post(
    f"{ONE}/rotate-secret",
    response_model=WebhookWithSecret,
    responses=documented(*READ),
    summary="Rotate a webhook's signing secret",
    description=(
        "A new secret, shown only now. For 24 hours every delivery carries two signatures "
        "(the new secret's and the old one's, space-separated), so receivers can switch. "
        "`Idempotency-Key` is checked, not replayed: a retry rotates again."
    ),
)
async def rotate_webhook_secret(
    webhook_id: UUID, accord: AccordDep, caller: AnyCaller, key: IdempotencyKey
) -> dict[str, Any]:
    """A new signing secret."""
    endpoint, secret = await webhooks.rotate_secret(accord, caller, webhook_id)
    return {**webhooks.endpoint_json(endpoint), "secret": secret}


@router.post(
    f"{ONE}/replay",
    status_code=202,
    response_model=WebhookReplayStarted,
    responses=documented(*READ, "cursor_expired"),
    summary="Deliver events again after a sequence",
    description=(
        "The worker delivers again every matching event after `after` (a feed `sequence`), "
        "with its own `webhook-id`; older than the feed keeps: 410 `cursor_expired`."
    ),
)
async def replay_webhook(
    webhook_id: UUID,
    body: WebhookReplay,
    accord: AccordDep,
    caller: AnyCaller,
    key: IdempotencyKey,
) -> dict[str, Any]:
    """Start a replay."""
    start = await webhooks.replay(accord, caller, webhook_id, after=body.after)
    return {"id": webhook_id, "replaying_after": start}


@router.get(
    f"{ONE}/deliveries",
    response_model=WebhookDeliveryList,
    responses=documented(*READ),
    summary="A webhook's latest deliveries",
    description="Newest first: attempts, status, latency and the last error of each.",
)
async def list_webhook_deliveries(
    webhook_id: UUID,
    accord: AccordDep,
    caller: AnyCaller,
    limit: Annotated[int, Query(ge=1, le=webhooks.MAX_DELIVERIES_PAGE)] = 50,
) -> dict[str, Any]:
    """The deliveries."""
    found = await webhooks.list_deliveries(accord, caller, webhook_id, limit=limit)
    return {"items": [webhooks.delivery_json(d) for d in found]}

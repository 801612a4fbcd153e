"""Delivering the change feed to webhook endpoints, by the worker, at least once (G12).

**Fan-out.** Each endpoint keeps the feed position it has read up to (``cursor``). A pass locks
the endpoints no other worker is fanning out to, reads each one's matching events after its
cursor through the feed's port (``tx.events.page``: assigned positions only, so gap-free) and
writes one delivery per event, moving the cursor in the same transaction: an event becomes a
delivery once per endpoint, whatever crashes.

**Delivery.** Due deliveries are leased (``settings.webhooks.lease_seconds``) and the attempt
counted before the POST; the result is recorded after. A worker killed mid-delivery leaves the
lease to run out: the delivery is due again and goes out with the same ``webhook-id`` (the
event id). Per endpoint, a subject's deliveries go one at a time in feed order: one is leased
only when no earlier pending delivery of its subject exists, so a later event waits until the
earlier one succeeded or was given up. Different subjects go in parallel, at most
``PER_ENDPOINT_IN_FLIGHT`` per endpoint.

**Failures.** A 2xx succeeds. Anything else (an error status, a redirect, no answer in 15 s)
is retried on Svix's schedule with jitter (``domain/webhooks.py``), at least ``Retry-After``
later on 429/503; after the last attempt the delivery is given up (``failed``). A 410 disables
the endpoint at once; an endpoint failing without a success for 5 days is disabled too. Either
is audited and mailed to the platform administrators.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from accord.domain import errors
from accord.domain.records import AuditEvent, ChangeEvent, FeedQuery
from accord.domain.store import Transaction
from accord.domain.webhooks import (
    FAILING_DAYS_BEFORE_DISABLE,
    MAX_ATTEMPTS,
    PER_ENDPOINT_IN_FLIGHT,
    Attempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookTargets,
    retry_delay,
    subject_key,
)
from accord.services import crashpoints
from accord.services.context import Context
from accord.services.crashpoints import CrashPoint
from accord.services.events import event_json
from accord.services.webhooks import live_secrets

FANOUT_ENDPOINTS = 200
FANOUT_PAGE = 500
LEASE_BATCH = 50
DISABLED_MAIL = "webhook_disabled"


@dataclass
class WebhookPass:
    """What one delivery pass did."""

    queued: int = 0
    delivered: int = 0
    failed: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.queued or self.delivered or self.failed)


def message_body(event: ChangeEvent) -> dict[str, Any]:
    """The Standard Webhooks body: ``{type, timestamp, data}``, data the feed's event."""
    return {
        "type": event.change.type,
        "timestamp": event.occurred_at.isoformat(),
        "data": event_json(event),
    }


async def fan_out(accord: Context) -> int:
    """Turn every endpoint's new matching feed events into deliveries; how many."""
    total = 0
    async with accord.store.transaction() as tx:
        for endpoint in await tx.webhooks.lock_for_fanout(limit=FANOUT_ENDPOINTS):
            total += await _fan_out_one(tx, endpoint)
    return total


async def _fan_out_one(tx: Transaction, endpoint: WebhookEndpoint) -> int:
    found = await tx.events.page(
        FeedQuery(
            after=endpoint.cursor,
            limit=FANOUT_PAGE,
            types=endpoint.event_types,
            organization_id=endpoint.organization_id,
        )
    )
    if not found:
        return 0
    rows = [
        {
            "event_id": event.change.id,
            "event_type": event.change.type,
            "position": event.position,
            "subject": subject_key(event.change.subject_type, event.change.subject_id),
            "payload": message_body(event),
        }
        for event in found
    ]
    added = await tx.webhooks.add_deliveries(endpoint.id, rows)
    await tx.webhooks.update(endpoint.id, cursor=found[-1].position)
    return added


async def deliver_webhooks(accord: Context) -> WebhookPass:
    """One pass: fan new events out, then attempt every due delivery (nothing when this
    accord has no webhook sender)."""
    result = WebhookPass()
    targets = accord.webhooks
    if targets is None:
        return result
    result.queued = await fan_out(accord)
    async with accord.store.transaction() as tx:
        leased = await tx.webhooks.lease_due(
            limit=LEASE_BATCH,
            per_endpoint=PER_ENDPOINT_IN_FLIGHT,
            lease_seconds=accord.settings.webhooks.lease_seconds,
        )
        endpoints = {d.endpoint_id: await tx.webhooks.get(d.endpoint_id) for d in leased}
    outcomes = await asyncio.gather(
        *(_attempt(accord, targets, endpoints[d.endpoint_id], d) for d in leased)
    )
    result.delivered = sum(outcomes)
    result.failed = len(outcomes) - result.delivered
    return result


async def _attempt(
    accord: Context,
    targets: WebhookTargets,
    endpoint: WebhookEndpoint | None,
    delivery: WebhookDelivery,
) -> bool:
    if endpoint is None:  # deleted meanwhile: its deliveries went with it
        return False
    try:
        attempt = await targets.send(
            endpoint.url,
            secrets=live_secrets(accord, endpoint),
            message_id=str(delivery.event_id),
            body=delivery.payload,
        )
    except errors.WebhookTargetRefused as refused:
        attempt = Attempt(None, 0.0, error=refused.message)
    crashpoints.reach(accord.settings, CrashPoint.WEBHOOK_SENT)
    async with accord.store.transaction() as tx:
        await _record(accord, tx, endpoint, delivery, attempt)
    return attempt.succeeded


async def _record(
    accord: Context,
    tx: Transaction,
    endpoint: WebhookEndpoint,
    delivery: WebhookDelivery,
    attempt: Attempt,
) -> None:
    if attempt.succeeded:
        await tx.webhooks.finish(delivery.id, attempt, status="succeeded", retry_in=None)
        if endpoint.failing_since is not None:
            await tx.webhooks.update(endpoint.id, failing_since=None)
        return
    if attempt.gone:
        await tx.webhooks.finish(delivery.id, attempt, status="failed", retry_in=None)
        current = await tx.webhooks.get(endpoint.id, lock=True)
        if current is not None and current.enabled:  # once, however many answered 410
            await disable(tx, current, f"the receiver answered 410 Gone for {delivery.event_id}")
        return
    last = delivery.attempts >= MAX_ATTEMPTS
    await tx.webhooks.finish(
        delivery.id,
        attempt,
        status="failed" if last else "pending",
        retry_in=None if last else retry_delay(delivery.attempts, attempt),
    )
    now = accord.clock.now()
    current = await tx.webhooks.get(endpoint.id, lock=True)
    if current is None or not current.enabled:
        return
    if current.failing_since is None:
        await tx.webhooks.update(endpoint.id, failing_since=now)
    elif now - current.failing_since >= timedelta(days=FAILING_DAYS_BEFORE_DISABLE):
        await disable(
            tx, current, f"every delivery failed for {FAILING_DAYS_BEFORE_DISABLE:g} days"
        )


async def disable(tx: Transaction, endpoint: WebhookEndpoint, reason: str) -> None:
    """Disable the endpoint, audit it and mail the platform administrators."""
    await tx.webhooks.update(endpoint.id, enabled=False, disabled_reason=reason)
    await tx.audit.record(
        AuditEvent(
            actor="accord",
            action="webhook.disabled",
            organization_id=endpoint.organization_id,
            data={"webhook_id": str(endpoint.id), "url": endpoint.url, "reason": reason},
        )
    )
    for email in await tx.webhooks.platform_admin_emails():
        await tx.outbox.enqueue(
            kind=DISABLED_MAIL,
            dedupe_key=f"{DISABLED_MAIL}:{endpoint.id}:{endpoint.updated_at.isoformat()}:{email}",
            recipient=email,
            payload={"webhook_id": str(endpoint.id), "url": endpoint.url, "reason": reason},
        )


def compose_disabled_mail(payload: dict[str, Any]) -> tuple[str, str]:
    """The notice to platform administrators that accord stopped delivering to an endpoint."""
    body = (
        f"Hello,\n\naccord disabled the webhook endpoint {payload['url']} "
        f"(id {payload['webhook_id']}): {payload['reason']}.\n\nNo events are delivered to it "
        "until it is enabled again (PATCH /api/admin/webhooks/{id} with enabled=true); the "
        "events meanwhile wait, and `accord webhooks replay` sends older ones again.\n"
    )
    return "A webhook endpoint was disabled", body

"""Managing webhook endpoints: register, list, change, remove, rotate the secret, replay.

The signing secret (``whsec_`` + 24 random bytes in base64) is shown once, when the endpoint is
made or its secret rotated, and stored sealed (G9). After a rotation the previous secret signs
too, next to the new one, for ``ROTATION_OVERLAP_HOURS`` (24 h): a receiver has a day to
switch. An organization-scoped caller sees and manages its organization's endpoints only; any
other endpoint is, to it, one that does not exist (G10).
"""

from __future__ import annotations

import base64
import secrets as random_secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.changes import EVENT_TYPES
from accord.domain.model import OperationKind
from accord.domain.principals import audit_by
from accord.domain.records import AuditEvent
from accord.domain.store import OperationChanges, Transaction
from accord.domain.webhooks import (
    ROTATION_OVERLAP_HOURS,
    SECRET_PREFIX,
    NewEndpoint,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookTargets,
)
from accord.services import operations
from accord.services.context import Context, Flow, Step

MAX_DELIVERIES_PAGE = 200


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks form."""
    return SECRET_PREFIX + base64.b64encode(random_secrets.token_bytes(24)).decode()


def live_secrets(accord: Context, endpoint: WebhookEndpoint) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during its overlap."""
    sealed = accord.sealer.open(endpoint.sealed_secrets)
    found = [sealed["current"]]
    until = sealed.get("previous_until")
    if sealed.get("previous") and until and datetime.fromisoformat(until) > accord.clock.now():
        found.append(sealed["previous"])
    return found


async def register_endpoint(
    accord: Context,
    caller: Caller,
    *,
    url: str,
    event_types: Sequence[str] = (),
    organization_id: UUID | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """A new enabled endpoint, as ``endpoint_json`` with its ``secret`` (shown only to this
    request and its retries). It hears the events committed from now on. A durable operation
    (``CreateWebhook``), so a retry with the same ``Idempotency-Key`` answers the first
    endpoint again, never a second one; the key with another body is ``idempotency_key_reused``
    (``services/operations.py``). The secret is read from the endpoint, where it is kept
    sealed for signing anyway: the operation keeps no copy of it (G9)."""
    made, endpoint = await _register(
        accord, caller, url, event_types, organization_id, idempotency_key
    )
    return {**made, "secret": live_secrets(accord, endpoint)[0]}


async def create_endpoint(
    accord: Context,
    caller: Caller,
    *,
    url: str,
    event_types: Sequence[str] = (),
    organization_id: UUID | None = None,
    idempotency_key: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """``register_endpoint``, answered as the endpoint and its secret."""
    key = idempotency_key
    _, endpoint = await _register(accord, caller, url, event_types, organization_id, key)
    return endpoint, live_secrets(accord, endpoint)[0]


async def _register(
    accord: Context,
    caller: Caller,
    url: str,
    event_types: Sequence[str],
    organization_id: UUID | None,
    idempotency_key: str | None,
) -> tuple[dict[str, Any], WebhookEndpoint]:
    """The operation's answer and the endpoint it made."""
    organization_id = _own_organization(caller, organization_id)
    request = {
        "url": url,
        "event_types": list(_types(event_types)),
        "organization_id": str(organization_id) if organization_id else None,
    }
    await _targets(accord).check(url)
    made = await operations.execute(
        accord,
        OperationKind.CREATE_WEBHOOK,
        caller=caller,
        idempotency_key=idempotency_key,
        request=request,
    )
    async with accord.store.transaction() as tx:
        return made, await _visible(tx, caller, UUID(made["id"]))


class CreateWebhook(Flow):
    """Registering an endpoint: everything in the claim's transaction, nothing remote."""

    kind = OperationKind.CREATE_WEBHOOK

    async def claim(self, tx: Transaction, accord: Context, step: Step) -> OperationChanges:
        request = step.op.request
        organization_id = UUID(request["organization_id"]) if request["organization_id"] else None
        if organization_id is not None and await tx.organizations.get(organization_id) is None:
            raise errors.OrganizationNotFound()
        endpoint = await tx.webhooks.create(
            NewEndpoint(
                id=uuid4(),
                url=request["url"],
                event_types=tuple(request["event_types"]),
                organization_id=organization_id,
                sealed_secrets=accord.sealer.seal({"current": new_secret()}),
            )
        )
        await tx.audit.record(
            AuditEvent(
                **audit_by(request),
                action="webhook.created",
                organization_id=organization_id,
                operation_id=step.op.id,
                data={
                    "webhook_id": str(endpoint.id),
                    "url": endpoint.url,
                    "types": list(endpoint.event_types),
                },
            )
        )
        return {
            "organization_id": organization_id,
            "flow_state": {"webhook": endpoint_json(endpoint)},  # no secret in it
        }

    async def ensure_remote(self, accord: Context, step: Step) -> OperationChanges:
        return {}  # the IdP has no part in it

    async def finalize(self, tx: Transaction, accord: Context, step: Step) -> dict[str, Any]:
        return dict(step.op.flow_state["webhook"])  # as it was made: the replay's answer too

    async def undo_claim(self, tx: Transaction, accord: Context, step: Step) -> None:
        webhook = (step.op.flow_state or {}).get("webhook")
        if webhook:
            await tx.webhooks.delete(UUID(webhook["id"]))


async def list_endpoints(accord: Context, caller: Caller) -> list[WebhookEndpoint]:
    """The endpoints the caller manages."""
    async with accord.store.transaction() as tx:
        return await tx.webhooks.all(None if caller.is_platform else caller.organization_id)


async def get_endpoint(accord: Context, caller: Caller, endpoint_id: UUID) -> WebhookEndpoint:
    """One endpoint the caller manages; ``WebhookNotFound`` otherwise."""
    async with accord.store.transaction() as tx:
        return await _visible(tx, caller, endpoint_id)


async def update_endpoint(
    accord: Context,
    caller: Caller,
    endpoint_id: UUID,
    *,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change the URL, the types or whether it is enabled (enabling again forgets why it was
    disabled and how long it had been failing)."""
    changes: dict[str, Any] = {}
    if url is not None:
        await _targets(accord).check(url)
        changes["url"] = url
    if event_types is not None:
        changes["event_types"] = _types(event_types)
    if enabled is not None:
        changes["enabled"] = enabled
        if enabled:
            changes.update(disabled_reason=None, failing_since=None)
        else:
            changes["disabled_reason"] = "disabled by a caller"
    async with accord.store.transaction() as tx:
        await _visible(tx, caller, endpoint_id)
        if not changes:
            return await _visible(tx, caller, endpoint_id)
        updated = await tx.webhooks.update(endpoint_id, **changes)
        assert updated is not None, "seen in this transaction"
        shown = {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}
        await _audit(tx, caller, "webhook.updated", updated, {"changes": shown})
    return updated


async def delete_endpoint(accord: Context, caller: Caller, endpoint_id: UUID) -> None:
    """Remove the endpoint and its deliveries."""
    async with accord.store.transaction() as tx:
        endpoint = await _visible(tx, caller, endpoint_id)
        await tx.webhooks.delete(endpoint_id)
        await _audit(tx, caller, "webhook.deleted", endpoint, {"url": endpoint.url})


async def rotate_secret(
    accord: Context, caller: Caller, endpoint_id: UUID
) -> tuple[WebhookEndpoint, str]:
    """A new secret (shown once); the current one keeps signing too for 24 h."""
    secret = new_secret()
    until = accord.clock.now() + timedelta(hours=ROTATION_OVERLAP_HOURS)
    async with accord.store.transaction() as tx:
        endpoint = await _visible(tx, caller, endpoint_id)
        current = accord.sealer.open(endpoint.sealed_secrets)["current"]
        sealed = accord.sealer.seal(
            {"current": secret, "previous": current, "previous_until": until.isoformat()}
        )
        updated = await tx.webhooks.update(endpoint_id, sealed_secrets=sealed)
        assert updated is not None, "seen in this transaction"
        await _audit(
            tx, caller, "webhook.secret_rotated", updated, {"previous_until": until.isoformat()}
        )
    return updated, secret


async def replay(accord: Context, caller: Caller, endpoint_id: UUID, *, after: int) -> int:
    """Deliver again every matching event after feed position ``after`` (those delivered
    already are sent again, with their own ``webhook-id``); the position replayed from."""
    if after < 0:
        raise errors.InvalidInput("after must be a feed position (0 or more).")
    async with accord.store.transaction() as tx:
        endpoint = await _visible(tx, caller, endpoint_id)
        horizon = await tx.events.horizon()
        if after < horizon:
            raise errors.CursorExpired(
                f"Events up to position {horizon} are no longer kept: replay from "
                f"after={horizon} at the earliest.",
                oldest_cursor=str(horizon),
            )
        start = min(after, endpoint.cursor)
        await tx.webhooks.update(endpoint_id, cursor=start)
        await _audit(tx, caller, "webhook.replayed", endpoint, {"after": after})
    return start


async def list_deliveries(
    accord: Context, caller: Caller, endpoint_id: UUID, *, limit: int = 50
) -> list[WebhookDelivery]:
    """The endpoint's latest deliveries, newest first."""
    if not 1 <= limit <= MAX_DELIVERIES_PAGE:
        raise errors.InvalidInput(f"limit must be between 1 and {MAX_DELIVERIES_PAGE}.")
    async with accord.store.transaction() as tx:
        await _visible(tx, caller, endpoint_id)
        return await tx.webhooks.deliveries(endpoint_id, limit=limit)


def endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint as the API and the CLI show it (never its secret)."""
    return {
        "id": str(endpoint.id),
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "organization_id": str(endpoint.organization_id) if endpoint.organization_id else None,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since.isoformat() if endpoint.failing_since else None,
        "created_at": endpoint.created_at.isoformat(),
        "updated_at": endpoint.updated_at.isoformat(),
    }


def delivery_json(delivery: WebhookDelivery) -> dict[str, Any]:
    """A delivery's state, as ``GET …/deliveries`` shows it."""
    return {
        "id": delivery.id,
        "event_id": str(delivery.event_id),
        "event_type": delivery.event_type,
        "sequence": delivery.position,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": (
            delivery.next_attempt_at.isoformat() if delivery.status == "pending" else None
        ),
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "latency_ms": delivery.last_latency_ms,
        "created_at": delivery.created_at.isoformat(),
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
    }


def _own_organization(caller: Caller, organization_id: UUID | None) -> UUID | None:
    if caller.is_platform:
        return organization_id
    if organization_id is not None and organization_id != caller.organization_id:
        raise errors.OrganizationNotFound()  # another tenant's: as if it did not exist
    return caller.organization_id


async def _visible(tx: Transaction, caller: Caller, endpoint_id: UUID) -> WebhookEndpoint:
    endpoint = await tx.webhooks.get(endpoint_id)
    if endpoint is None or not (
        caller.is_platform or endpoint.organization_id == caller.organization_id
    ):
        raise errors.WebhookNotFound()
    return endpoint


def _types(event_types: Sequence[str]) -> tuple[str, ...]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise errors.InvalidInput(
            f"Unknown event type {unknown[0]!r}; the types are: {', '.join(EVENT_TYPES)}."
        )
    return tuple(sorted(set(event_types)))


def _targets(accord: Context) -> WebhookTargets:
    if accord.webhooks is None:
        raise errors.ConfigurationError("This accord was built without webhook delivery.")
    return accord.webhooks


async def _audit(
    tx: Transaction, caller: Caller, action: str, endpoint: WebhookEndpoint, data: dict[str, Any]
) -> None:
    await tx.audit.record(
        AuditEvent(
            **caller.audit_fields(),
            action=action,
            organization_id=endpoint.organization_id,
            data={"webhook_id": str(endpoint.id), **data},
        )
    )


async def send_test(accord: Context, caller: Caller, endpoint_id: UUID) -> dict[str, Any]:
    """POST a ``webhook.test`` message to the endpoint now (not through the worker, not
    retried), signed like every delivery; how the receiver answered."""
    async with accord.store.transaction() as tx:
        endpoint = await _visible(tx, caller, endpoint_id)
    now = accord.clock.now().isoformat()
    attempt = await _targets(accord).send(
        endpoint.url,
        secrets=live_secrets(accord, endpoint),
        message_id=f"msg_test_{uuid4().hex}",
        body={"type": "webhook.test", "timestamp": now, "data": {"webhook_id": str(endpoint_id)}},
    )
    return {
        "ok": attempt.succeeded,
        "status": attempt.status,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error,
    }

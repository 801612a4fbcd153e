"""In-memory webhook endpoints and deliveries (see ``memory_store.py`` and
``adapters/db/webhooks.py``, whose SQL this follows rule for rule).

Transactions run one at a time here, so the row locks PostgreSQL takes (``lock``, fan-out,
leasing's ``SKIP LOCKED``) are held trivially; what stays is the per-subject order and the
per-endpoint bound, counted over leases already taken as the SQL counts them.
``tests/contracts/test_store_webhooks.py`` holds the two to the same answers.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from accord.domain import errors
from accord.domain.model import LIVE_STATUSES
from accord.domain.webhooks import Attempt, NewEndpoint, WebhookDelivery, WebhookEndpoint
from accord.testing.memory_tables import Repository, Tables

STATUSES = ("pending", "succeeded", "failed")  # ck_webhook_deliveries_known_delivery_status
_ENDPOINT_COLUMNS = {
    "url",
    "event_types",
    "enabled",
    "disabled_reason",
    "sealed_secrets",
    "cursor",
    "failing_since",
}


class MemoryWebhooks(Repository):
    async def create(self, endpoint: NewEndpoint) -> WebhookEndpoint:
        if endpoint.id in self.t.webhook_endpoints:
            raise errors.ConstraintViolated("pk_webhook_endpoints")
        organization = endpoint.organization_id
        if organization is not None and organization not in self.t.organizations:
            raise errors.ConstraintViolated("fk_webhook_endpoints_organization_id_organizations")
        now = self.now()
        record = WebhookEndpoint(
            id=endpoint.id,
            url=endpoint.url,
            event_types=tuple(endpoint.event_types),
            organization_id=organization,
            enabled=True,
            disabled_reason=None,
            sealed_secrets=endpoint.sealed_secrets,
            cursor=self.t.feed_head,
            failing_since=None,
            created_at=now,
            updated_at=now,
        )
        self.t.webhook_endpoints[record.id] = record
        return record

    async def get(self, endpoint_id: UUID, *, lock: bool = False) -> WebhookEndpoint | None:
        return self.t.webhook_endpoints.get(endpoint_id)  # frozen: safe to hand out

    async def all(self, organization_id: UUID | None) -> list[WebhookEndpoint]:
        found = (
            e
            for e in self.t.webhook_endpoints.values()
            if organization_id is None or e.organization_id == organization_id
        )
        return sorted(found, key=lambda e: (e.created_at, e.id))

    async def update(self, endpoint_id: UUID, **changes: Any) -> WebhookEndpoint | None:
        unknown = set(changes) - _ENDPOINT_COLUMNS
        if unknown:
            raise TypeError(f"webhook_endpoints has no column {sorted(unknown)[0]!r}")
        endpoint = self.t.webhook_endpoints.get(endpoint_id)
        if endpoint is None:
            return None
        if "event_types" in changes:
            changes["event_types"] = tuple(changes["event_types"])
        changed = dataclasses.replace(endpoint, **changes, updated_at=self.now())
        self.t.webhook_endpoints[endpoint_id] = changed
        return changed

    async def delete(self, endpoint_id: UUID) -> bool:
        if self.t.webhook_endpoints.pop(endpoint_id, None) is None:
            return False
        _drop_deliveries(self.t, {endpoint_id})
        return True

    async def lock_for_fanout(self, *, limit: int) -> list[WebhookEndpoint]:
        enabled = sorted((e for e in self.t.webhook_endpoints.values() if e.enabled), key=_by_id)
        return enabled[:limit]

    async def add_deliveries(self, endpoint_id: UUID, rows: Sequence[dict[str, Any]]) -> int:
        if rows and endpoint_id not in self.t.webhook_endpoints:
            raise errors.ConstraintViolated("fk_webhook_deliveries_endpoint_id_webhook_endpoints")
        for row in rows:
            self._upsert(endpoint_id, row)
        return len(rows)

    def _upsert(self, endpoint_id: UUID, row: dict[str, Any]) -> None:
        now, payload = self.now(), copy.deepcopy(row["payload"])
        existing = self._by_event(endpoint_id, row["event_id"])
        if existing is not None:  # a replay: pending again from scratch, its history kept
            again = dataclasses.replace(
                existing,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                payload=payload,
                position=row["position"],
            )
            self.t.webhook_deliveries[existing.id] = (again, None)
            return
        delivery = WebhookDelivery(
            id=next(self.ids),
            endpoint_id=endpoint_id,
            event_id=row["event_id"],
            event_type=row["event_type"],
            position=row["position"],
            subject=row["subject"],
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            last_status=None,
            last_error=None,
            last_latency_ms=None,
            created_at=now,
            delivered_at=None,
        )
        self.t.webhook_deliveries[delivery.id] = (delivery, None)

    def _by_event(self, endpoint_id: UUID, event_id: UUID) -> WebhookDelivery | None:
        found = (
            w
            for w, _ in self.t.webhook_deliveries.values()
            if w.endpoint_id == endpoint_id and w.event_id == event_id
        )
        return next(found, None)

    async def lease_due(
        self, *, limit: int, per_endpoint: int, lease_seconds: float
    ) -> list[WebhookDelivery]:
        now = self.now()
        enabled = {e.id for e in self.t.webhook_endpoints.values() if e.enabled}
        rows = [
            (w, lease)
            for w, lease in self.t.webhook_deliveries.values()
            if w.endpoint_id in enabled
        ]
        ranked = _ranked_due(rows, now)
        busy = _busy(rows, now)
        chosen = [
            (rank, w) for rank, w in ranked if rank <= per_endpoint - busy.get(w.endpoint_id, 0)
        ]
        chosen.sort(key=lambda pair: (pair[0], pair[1].position))
        until = now + timedelta(seconds=float(lease_seconds))
        leased = []
        for _, w in chosen[: max(limit, 0)]:
            taken = dataclasses.replace(w, attempts=w.attempts + 1)
            self.t.webhook_deliveries[w.id] = (taken, until)
            leased.append(copy.deepcopy(taken))
        return sorted(leased, key=lambda w: w.position)

    async def finish(
        self, delivery_id: int, attempt: Attempt, *, status: str, retry_in: float | None
    ) -> None:
        if status not in STATUSES:
            raise errors.ConstraintViolated("ck_webhook_deliveries_known_delivery_status")
        found = self.t.webhook_deliveries.get(delivery_id)
        if found is None:
            return
        delivery, now = found[0], self.now()
        changes: dict[str, Any] = {
            "status": status,
            "last_status": attempt.status,
            "last_error": attempt.error,
            "last_latency_ms": attempt.latency_ms,
        }
        if status == "succeeded":
            changes["delivered_at"] = now
        if retry_in is not None:
            changes["next_attempt_at"] = now + timedelta(seconds=float(retry_in))
        self.t.webhook_deliveries[delivery_id] = (dataclasses.replace(delivery, **changes), None)

    async def deliveries(self, endpoint_id: UUID, *, limit: int) -> list[WebhookDelivery]:
        found = sorted(
            (w for w, _ in self.t.webhook_deliveries.values() if w.endpoint_id == endpoint_id),
            key=lambda w: w.position,
            reverse=True,
        )
        return [copy.deepcopy(w) for w in found[:limit]]

    async def platform_admin_emails(self) -> list[str]:
        return sorted(
            u.email
            for u in self.t.users.values()
            if u.is_platform_admin and u.status in LIVE_STATUSES and u.email is not None
        )


def drop_endpoints(tables: Tables, organization_id: UUID) -> None:
    """The foreign keys' cascade when an organization goes: its endpoints and deliveries."""
    gone = {k for k, e in tables.webhook_endpoints.items() if e.organization_id == organization_id}
    for key in gone:
        del tables.webhook_endpoints[key]
    _drop_deliveries(tables, gone)


def _drop_deliveries(tables: Tables, endpoints: set[UUID]) -> None:
    for key in [k for k, (w, _) in tables.webhook_deliveries.items() if w.endpoint_id in endpoints]:
        del tables.webhook_deliveries[key]


Leased = tuple[WebhookDelivery, datetime | None]


def _by_id(endpoint: WebhookEndpoint) -> UUID:
    return endpoint.id


def _ranked_due(rows: list[Leased], now: datetime) -> list[tuple[int, WebhookDelivery]]:
    """Per endpoint, in feed order: the due, unleased deliveries whose subject has no earlier
    pending one (leased or not, due or not), numbered from 1 (the SQL's ``row_number``)."""
    pending = [w for w, _ in rows if w.status == "pending"]
    first = {}
    for w in pending:
        key = (w.endpoint_id, w.subject)
        if key not in first or w.position < first[key]:
            first[key] = w.position
    due = sorted(
        (
            w
            for w, lease in rows
            if w.status == "pending"
            and w.next_attempt_at <= now
            and (lease is None or lease < now)
            and first[(w.endpoint_id, w.subject)] == w.position
        ),
        key=lambda w: w.position,
    )
    counts: dict[UUID, int] = {}
    ranked = []
    for w in due:
        counts[w.endpoint_id] = counts.get(w.endpoint_id, 0) + 1
        ranked.append((counts[w.endpoint_id], w))
    return ranked


def _busy(rows: list[Leased], now: datetime) -> dict[UUID, int]:
    """Per endpoint: the pending deliveries whose lease still runs."""
    busy: dict[UUID, int] = {}
    for w, lease in rows:
        if w.status == "pending" and lease is not None and lease >= now:
            busy[w.endpoint_id] = busy.get(w.endpoint_id, 0) + 1
    return busy

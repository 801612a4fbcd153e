"""SQL for webhook endpoints and deliveries (``domain/webhooks.py`` states the rules).

Leasing takes the due endpoints' rows ``FOR UPDATE SKIP LOCKED`` first, so one worker at a time
leases for an endpoint and the per-endpoint bound counts every lease already committed; then
one statement leases, per endpoint, the oldest due deliveries whose subject has no earlier
pending delivery (so a subject's events go out one after the other, in feed order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.sql import seconds_from_now
from accord.adapters.db.tables import (
    change_feed_head,
    users,
    webhook_deliveries,
    webhook_endpoints,
)
from accord.adapters.db.work_signal import WorkNotice
from accord.domain.webhooks import Attempt, NewEndpoint, WebhookDelivery, WebhookEndpoint

e = webhook_endpoints.c
d = webhook_deliveries.c

_LEASE = text(
    """
    WITH ranked AS (
        SELECT w.id, w.endpoint_id,
            row_number() OVER (PARTITION BY w.endpoint_id ORDER BY w.position) AS n
        FROM webhook_deliveries w
        WHERE w.endpoint_id = ANY(CAST(:endpoints AS uuid[]))
          AND w.status = 'pending' AND w.next_attempt_at <= now()
          AND (w.leased_until IS NULL OR w.leased_until < now())
          AND NOT EXISTS (
              SELECT 1 FROM webhook_deliveries p
              WHERE p.endpoint_id = w.endpoint_id AND p.subject = w.subject
                AND p.status = 'pending' AND p.position < w.position
          )
    ), busy AS (
        SELECT endpoint_id, count(*) AS n FROM webhook_deliveries
        WHERE endpoint_id = ANY(CAST(:endpoints AS uuid[]))
          AND status = 'pending' AND leased_until >= now()
        GROUP BY endpoint_id
    ), chosen AS (
        SELECT ranked.id FROM ranked LEFT JOIN busy USING (endpoint_id)
        WHERE ranked.n <= :per_endpoint - coalesce(busy.n, 0)
        ORDER BY ranked.n LIMIT :limit
    )
    UPDATE webhook_deliveries w
    SET leased_until = now() + make_interval(secs => :lease), attempts = w.attempts + 1
    FROM chosen WHERE w.id = chosen.id
    RETURNING w.*
    """
)


def _endpoint(row: Any) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        url=row.url,
        event_types=tuple(row.event_types),
        organization_id=row.organization_id,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        sealed_secrets=bytes(row.sealed_secrets),
        cursor=row.cursor,
        failing_since=row.failing_since,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _delivery(row: Any) -> WebhookDelivery:
    return WebhookDelivery(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=row.event_type,
        position=row.position,
        subject=row.subject,
        payload=row.payload,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_status=row.last_status,
        last_error=row.last_error,
        last_latency_ms=row.last_latency_ms,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


class PgWebhooks:
    """``WebhookStore`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection, work: WorkNotice | None = None) -> None:
        self._conn = conn
        self._work = work or WorkNotice()

    async def create(self, endpoint: NewEndpoint) -> WebhookEndpoint:
        feed_head = select(func.coalesce(func.max(change_feed_head.c.last_position), 0))
        row = (
            await self._conn.execute(
                pg_insert(webhook_endpoints)
                .values(
                    id=endpoint.id,
                    url=endpoint.url,
                    event_types=list(endpoint.event_types),
                    organization_id=endpoint.organization_id,
                    sealed_secrets=endpoint.sealed_secrets,
                    cursor=feed_head.scalar_subquery(),
                )
                .returning(webhook_endpoints)
            )
        ).one()
        return _endpoint(row)

    async def get(self, endpoint_id: UUID, *, lock: bool = False) -> WebhookEndpoint | None:
        query = select(webhook_endpoints).where(e.id == endpoint_id)
        if lock:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).one_or_none()
        return _endpoint(row) if row is not None else None

    async def all(self, organization_id: UUID | None) -> list[WebhookEndpoint]:
        query = select(webhook_endpoints).order_by(e.created_at, e.id)
        if organization_id is not None:
            query = query.where(e.organization_id == organization_id)
        return [_endpoint(row) for row in await self._conn.execute(query)]

    async def update(self, endpoint_id: UUID, **changes: Any) -> WebhookEndpoint | None:
        if "event_types" in changes:
            changes["event_types"] = list(changes["event_types"])
        row = (
            await self._conn.execute(
                update(webhook_endpoints)
                .where(e.id == endpoint_id)
                .values(**changes, updated_at=func.now())
                .returning(webhook_endpoints)
            )
        ).one_or_none()
        return _endpoint(row) if row is not None else None

    async def delete(self, endpoint_id: UUID) -> bool:
        gone = await self._conn.execute(delete(webhook_endpoints).where(e.id == endpoint_id))
        return bool(gone.rowcount)

    async def lock_for_fanout(self, *, limit: int) -> list[WebhookEndpoint]:
        query = (
            select(webhook_endpoints)
            .where(e.enabled)
            .order_by(e.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_endpoint(row) for row in await self._conn.execute(query)]

    async def add_deliveries(self, endpoint_id: UUID, rows: Sequence[dict[str, Any]]) -> int:
        if not rows:
            return 0
        self._work.mark()
        statement = pg_insert(webhook_deliveries).values(
            [{**row, "endpoint_id": endpoint_id} for row in rows]
        )
        statement = statement.on_conflict_do_update(
            constraint="one_delivery_per_event",
            set_={
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": func.now(),
                "leased_until": None,
                "payload": statement.excluded.payload,
                "position": statement.excluded.position,
            },
        )
        # Counted from RETURNING: psycopg reports no rowcount (-1) for this upsert.
        return len((await self._conn.execute(statement.returning(d.id))).all())

    async def lease_due(
        self, *, limit: int, per_endpoint: int, lease_seconds: float
    ) -> list[WebhookDelivery]:
        locked = select(e.id).where(e.enabled).with_for_update(skip_locked=True)
        endpoints = [row.id for row in await self._conn.execute(locked)]
        if not endpoints:
            return []
        found = await self._conn.execute(
            _LEASE,
            {
                "endpoints": endpoints,
                "per_endpoint": per_endpoint,
                "limit": limit,
                "lease": float(lease_seconds),
            },
        )
        return sorted((_delivery(row) for row in found), key=lambda x: x.position)

    async def finish(
        self, delivery_id: int, attempt: Attempt, *, status: str, retry_in: float | None
    ) -> None:
        values: dict[str, Any] = {
            "status": status,
            "leased_until": None,
            "last_status": attempt.status,
            "last_error": attempt.error,
            "last_latency_ms": attempt.latency_ms,
        }
        if status == "succeeded":
            values["delivered_at"] = func.now()
        if retry_in is not None:
            values["next_attempt_at"] = seconds_from_now(retry_in)
        await self._conn.execute(
            update(webhook_deliveries).where(d.id == delivery_id).values(**values)
        )

    async def deliveries(self, endpoint_id: UUID, *, limit: int) -> list[WebhookDelivery]:
        query = (
            select(webhook_deliveries)
            .where(d.endpoint_id == endpoint_id)
            .order_by(d.position.desc())
            .limit(limit)
        )
        return [_delivery(row) for row in await self._conn.execute(query)]

    async def platform_admin_emails(self) -> list[str]:
        query = (
            select(users.c.email)
            .where(users.c.is_platform_admin, users.c.status.in_(("pending", "active")))
            .order_by(users.c.email)
        )
        return [row.email for row in await self._conn.execute(query)]

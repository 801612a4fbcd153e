"""SQL for the audit trail: append-only, read in (at, id) pages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.direct import Direct
from accord.adapters.db.sql import json_rows, seconds_ago
from accord.adapters.db.tables import audit_events
from accord.domain.principals import Principal, PrincipalKind
from accord.domain.records import AuditEntry, AuditEvent, AuditQuery

c = audit_events.c


_RECORD = Direct(insert(audit_events))  # built once, run on psycopg (issue 12: ``Direct``)


class PgAuditLog:
    """``AuditLog`` on PostgreSQL: append-only."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def delete_older_than(self, days: float, *, limit: int) -> int:
        """Retention, the one exception to append-only: the oldest events go first."""
        old = (
            select(c.id)
            .where(c.at < seconds_ago(days * 86400))
            .order_by(c.id)
            .limit(limit)
            .scalar_subquery()
        )
        result = await self._conn.execute(delete(audit_events).where(c.id.in_(old)))
        return result.rowcount

    async def record(self, event: AuditEvent, *, current: Mapping[str, Any] | None = None) -> None:
        await _RECORD.run(self._conn, _row(event))

    async def record_many(
        self,
        events: Sequence[AuditEvent],
        *,
        current: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        if not events:
            return
        await self._conn.execute(_RECORD_MANY, {"rows": json_rows(_row(e) for e in events)})

    async def query(self, query: AuditQuery) -> list[AuditEntry]:
        statement = select(audit_events).order_by(c.at, c.id).limit(query.limit)
        conditions = _conditions(query)
        if conditions:
            statement = statement.where(and_(*conditions))
        return [_entry(row) for row in await self._conn.execute(statement)]


_COLUMNS = {
    "actor": "text",
    "action": "text",
    "subject_user_id": "uuid",
    "subject_email": "text",
    "organization_id": "uuid",
    "operation_id": "uuid",
    "data": "jsonb",
    "by_kind": "text",
    "by_token_id": "uuid",
    "by_scope": "text",
    "by_user_id": "uuid",
    "claimed_actor": "text",
}
# The events as one JSON parameter, expanded server-side (``json_rows``): one short statement
# for any number of events, and no per-element adaptation of arrays in Python.
_RECORD_MANY = text(
    "INSERT INTO audit_events ("
    + ", ".join(_COLUMNS)
    + ") SELECT "
    + ", ".join(f"v.{n}" for n in _COLUMNS)
    + " FROM json_to_recordset(CAST(:rows AS json)) AS v("
    + ", ".join(f"{n} {t}" for n, t in _COLUMNS.items())
    + ")"
)


def _row(event: AuditEvent) -> dict[str, Any]:
    by = event.by
    return {
        "actor": event.actor,
        "action": event.action,
        "subject_user_id": event.subject_user_id,
        "subject_email": event.subject_email,
        "organization_id": event.organization_id,
        "operation_id": event.operation_id,
        "data": event.data,
        "by_kind": by.kind.value,
        "by_token_id": by.token_id,
        "by_scope": by.scope,
        "by_user_id": by.user_id,
        "claimed_actor": event.claimed_actor,
    }


def _conditions(q: AuditQuery) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if q.organization_id is not None:
        found.append(c.organization_id == q.organization_id)
    if q.user_id is not None:
        found.append(or_(c.subject_user_id == q.user_id, c.by_user_id == q.user_id))
    if q.action is not None:
        found.append(c.action == q.action)
    if q.since is not None:
        found.append(c.at >= q.since)
    if q.until is not None:
        found.append(c.at < q.until)
    if q.after is not None:
        found.append(tuple_(c.at, c.id) > tuple_(*q.after))
    return found


def _entry(row: Any) -> AuditEntry:
    principal = (
        Principal(
            PrincipalKind(row.by_kind),
            token_id=row.by_token_id,
            scope=row.by_scope,
            user_id=row.by_user_id,
            name=row.actor if row.by_kind == PrincipalKind.SYSTEM.value else None,
        )
        if row.by_kind
        else Principal(PrincipalKind.UNRECORDED, name=row.actor)
    )
    event = AuditEvent(
        actor=row.actor,
        action=row.action,
        subject_user_id=row.subject_user_id,
        subject_email=row.subject_email,
        organization_id=row.organization_id,
        operation_id=row.operation_id,
        data=row.data,
        principal=principal,
        claimed_actor=row.claimed_actor,
    )
    return AuditEntry(id=row.id, at=row.at, event=event)

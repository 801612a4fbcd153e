"""SQL for API tokens and the audit trail."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.sql import seconds_ago
from accord.adapters.db.tables import api_tokens, audit_events
from accord.domain.model import TokenScope
from accord.domain.records import ApiTokenRecord, AuditEvent


def _token(row: Any) -> ApiTokenRecord:
    return ApiTokenRecord(
        id=row.id,
        name=row.name,
        scope=TokenScope(row.scope),
        organization_id=row.organization_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class PgApiTokens:
    """``ApiTokens`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def insert(
        self,
        *,
        token_id: UUID,
        digest: str,
        name: str,
        scope: TokenScope,
        organization_id: UUID | None,
    ) -> ApiTokenRecord:
        statement = (
            insert(api_tokens)
            .values(
                id=token_id, digest=digest, name=name, scope=scope, organization_id=organization_id
            )
            .returning(*api_tokens.c)
        )
        return _token((await self._conn.execute(statement)).one())

    async def live(self, digest: str) -> ApiTokenRecord | None:
        query = select(api_tokens).where(
            api_tokens.c.digest == digest, api_tokens.c.revoked_at.is_(None)
        )
        row = (await self._conn.execute(query)).first()
        return _token(row) if row else None

    async def revoke(self, token_id: UUID) -> bool:
        """A second revocation keeps the first time."""
        await self._conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=func.now())
        )
        query = select(api_tokens.c.id).where(api_tokens.c.id == token_id)
        return (await self._conn.execute(query)).first() is not None

    async def live_count(self, organization_id: UUID) -> int:
        query = (
            select(func.count())
            .select_from(api_tokens)
            .where(
                api_tokens.c.organization_id == organization_id, api_tokens.c.revoked_at.is_(None)
            )
        )
        return (await self._conn.execute(query)).scalar_one()


class PgAuditLog:
    """``AuditLog`` on PostgreSQL: append-only."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def record(self, event: AuditEvent) -> None:
        await self._conn.execute(insert(audit_events).values(**asdict(event)))

    async def delete_older_than(self, days: float, *, limit: int) -> int:
        """Retention, the one exception to append-only: the oldest events go first."""
        old = (
            select(audit_events.c.id)
            .where(audit_events.c.at < seconds_ago(days * 86400))
            .order_by(audit_events.c.id)
            .limit(limit)
            .scalar_subquery()
        )
        result = await self._conn.execute(delete(audit_events).where(audit_events.c.id.in_(old)))
        return result.rowcount

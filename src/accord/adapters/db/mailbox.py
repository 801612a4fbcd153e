"""SQL for the embedded mailbox (the ``Mailbox`` repository)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.sql import seconds_ago
from accord.adapters.db.tables import mailbox
from accord.domain.records import MailRecord

c = mailbox.c


def _record(row: Any) -> MailRecord:
    return MailRecord(
        id=row.id,
        recipient=row.recipient,
        subject=row.subject,
        body=row.body,
        created_at=row.created_at,
    )


class PgMailbox:
    """``Mailbox`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def deliver(self, *, recipient: str, subject: str, body: str) -> int:
        statement = (
            insert(mailbox).values(recipient=recipient, subject=subject, body=body).returning(c.id)
        )
        return (await self._conn.execute(statement)).scalar_one()

    async def list(
        self, *, recipient: str | None = None, before: int | None = None, limit: int = 50
    ) -> list[MailRecord]:
        query = select(mailbox).order_by(c.id.desc()).limit(limit)
        if recipient is not None:
            query = query.where(c.recipient == recipient)
        if before is not None:
            query = query.where(c.id < before)
        return [_record(row) for row in await self._conn.execute(query)]

    async def get(self, message_id: int) -> MailRecord | None:
        row = (await self._conn.execute(select(mailbox).where(c.id == message_id))).first()
        return _record(row) if row else None

    async def delete_older_than(self, days: float, *, limit: int) -> int:
        old = (
            select(c.id)
            .where(c.created_at < seconds_ago(days * 86400))
            .order_by(c.id)
            .limit(limit)
            .scalar_subquery()
        )
        result = await self._conn.execute(delete(mailbox).where(c.id.in_(old)))
        return result.rowcount

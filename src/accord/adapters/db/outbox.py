"""SQL for the outbox: mail written in the same transaction as the change it announces, and
delivered after commit by the worker, at least once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.tables import one_time_tokens, outbox


async def lease_due(conn: AsyncConnection, *, limit: int, lease_seconds: float) -> list[RowMapping]:
    """Take up to ``limit`` unsent messages whose time has come, hiding them from other workers
    for ``lease_seconds`` (a worker that dies mid-send leaves them to be sent again)."""
    due = (
        select(outbox.c.id)
        .where(outbox.c.sent_at.is_(None), outbox.c.next_attempt_at <= func.now())
        .order_by(outbox.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = await conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(due))
        .values(
            next_attempt_at=func.now() + text(f"interval '{float(lease_seconds)} seconds'"),
            attempts=outbox.c.attempts + 1,
        )
        .returning(*outbox.c)
    )
    return list(rows.mappings())


async def mark_sent(conn: AsyncConnection, message_id: int) -> None:
    await conn.execute(
        update(outbox).where(outbox.c.id == message_id).values(sent_at=func.now(), last_error=None)
    )


async def mark_failed(conn: AsyncConnection, message_id: int, error: str, retry_in: float) -> None:
    await conn.execute(
        update(outbox)
        .where(outbox.c.id == message_id)
        .values(
            last_error=error[:500],
            next_attempt_at=func.now() + text(f"interval '{float(retry_in)} seconds'"),
        )
    )


async def unsent(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(select(outbox).where(outbox.c.sent_at.is_(None)))
    return [dict(r) for r in rows.mappings()]


async def expire_tokens(conn: AsyncConnection) -> int:
    """Delete one-time tokens that can no longer be used (expired, or used a day ago)."""
    result = await conn.execute(
        delete(one_time_tokens).where(
            (one_time_tokens.c.expires_at < func.now())
            | (one_time_tokens.c.used_at < func.now() - text("interval '1 day'"))
        )
    )
    return result.rowcount

"""Small pieces of SQL that several repositories share."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Interval, Table, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection


def seconds_from_now(seconds: float) -> ColumnElement[Any]:
    """``now() + interval`` as a bound parameter (never text built from a number)."""
    return func.now() + literal(timedelta(seconds=float(seconds)), Interval())


def seconds_ago(seconds: float) -> ColumnElement[Any]:
    return func.now() - literal(timedelta(seconds=float(seconds)), Interval())


async def lease_rows(
    conn: AsyncConnection,
    table: Table,
    *,
    due: ColumnElement[bool],
    order_by: ColumnElement[Any],
    limit: int,
    values: dict[str, Any],
) -> list[Any]:
    """Lease up to ``limit`` rows of ``table`` that are ``due``, in ``order_by`` order.

    ``FOR UPDATE SKIP LOCKED`` lets any number of workers share the queue: each row goes to one
    of them, and nobody waits for a row another is taking.
    """
    ids = (
        select(table.c.id)
        .where(due)
        .order_by(order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = await conn.execute(
        update(table).where(table.c.id.in_(ids)).values(**values).returning(*table.c)
    )
    return list(rows)

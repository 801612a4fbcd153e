"""The throttle over PostgreSQL: the ``limits`` library's moving-window strategy, on a storage
of accord's own (``limits`` ships none for PostgreSQL), so every process shares the counters.

``PgRateLimitStorage`` implements what ``limits.aio.storage.Storage`` and
``MovingWindowSupport`` declare abstract (limits 5.x): ``incr``/``get``/``get_expiry``/
``clear``/``reset``/``check`` and ``acquire_entry``/``get_moving_window``. Each attempt is one
row of ``rate_limits``; a key's rows are counted and added under a transaction-scoped advisory
lock on the key, so concurrent attempts in any process never overshoot a limit.
``LimitsThrottle`` is the ``Throttle`` port over any ``limits`` storage with moving-window
support.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import limits
from limits.aio.storage import MovingWindowSupport, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.database import Database
from accord.adapters.db.tables import rate_limits
from accord.domain import errors

_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 7))")


class PgRateLimitStorage(Storage, MovingWindowSupport):
    """A ``limits`` storage in accord's PostgreSQL database (table ``rate_limits``)."""

    STORAGE_SCHEME: ClassVar[list[str] | None] = ["accord+postgresql"]

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._db = db
        self._clock = clock  # seconds since the epoch; tests move it

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return errors.StorageUnavailable

    async def _window(self, conn: AsyncConnection, key: str, since: float) -> tuple[float, int]:
        row = (
            await conn.execute(
                select(func.min(rate_limits.c.hit_at), func.count()).where(
                    rate_limits.c.key == key, rate_limits.c.hit_at > since
                )
            )
        ).one()
        return (row[0] if row[0] is not None else self._clock()), row[1]

    async def _add(self, conn: AsyncConnection, key: str, expiry: float, amount: int) -> None:
        now = self._clock()
        rows = [{"key": key, "hit_at": now, "expires_at": now + expiry}] * amount
        await conn.execute(insert(rate_limits), rows)

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        async with self._db.transaction() as conn:
            await conn.execute(_LOCK, {"key": key})
            _, count = await self._window(conn, key, self._clock() - expiry)
            if count + amount > limit:
                return False
            await self._add(conn, key, expiry, amount)
            return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        async with self._db.transaction() as conn:
            return await self._window(conn, key, self._clock() - expiry)

    # A fixed window (what ``limits``' other strategies use) over the same rows: it starts with
    # the key's oldest live row and ends ``expiry`` seconds later.
    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        async with self._db.transaction() as conn:
            await conn.execute(_LOCK, {"key": key})
            now = self._clock()
            await conn.execute(
                delete(rate_limits).where(rate_limits.c.key == key, rate_limits.c.expires_at <= now)
            )
            start = (await conn.execute(self._oldest(key))).scalar()
            until = (start + expiry) if start is not None else now + expiry
            rows = [{"key": key, "hit_at": now, "expires_at": until}] * amount
            await conn.execute(insert(rate_limits), rows)
            return int((await conn.execute(self._count(key, now))).scalar() or 0)

    async def get(self, key: str) -> int:
        async with self._db.transaction() as conn:
            return int((await conn.execute(self._count(key, self._clock()))).scalar() or 0)

    async def get_expiry(self, key: str) -> float:
        async with self._db.transaction() as conn:
            found = (
                await conn.execute(
                    select(func.max(rate_limits.c.expires_at)).where(rate_limits.c.key == key)
                )
            ).scalar()
        return float(found) if found is not None else self._clock()

    async def clear(self, key: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(delete(rate_limits).where(rate_limits.c.key == key))

    async def reset(self) -> int | None:
        async with self._db.transaction() as conn:
            return (await conn.execute(delete(rate_limits))).rowcount

    async def check(self) -> bool:
        try:
            async with self._db.transaction() as conn:
                await conn.execute(select(1))
        except errors.StorageUnavailable:
            return False
        return True

    async def sweep(self, *, limit: int) -> int:
        """Delete up to ``limit`` rows whose windows have passed."""
        old = (
            select(rate_limits.c.id)
            .where(rate_limits.c.expires_at <= self._clock())
            .limit(limit)
            .scalar_subquery()
        )
        async with self._db.transaction() as conn:
            return (
                await conn.execute(delete(rate_limits).where(rate_limits.c.id.in_(old)))
            ).rowcount

    @staticmethod
    def _oldest(key: str) -> Any:
        return select(func.min(rate_limits.c.hit_at)).where(rate_limits.c.key == key)

    @staticmethod
    def _count(key: str, now: float) -> Any:
        return select(func.count()).where(rate_limits.c.key == key, rate_limits.c.expires_at > now)


class LimitsThrottle:
    """The ``Throttle`` port: ``limits``' moving-window strategy over a storage that has it."""

    def __init__(self, storage: Any, *, clock: Callable[[], float] = time.time) -> None:
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._clock = clock

    async def hit(self, key: str, rule: str) -> float | None:
        waits = [
            await self._wait(item, key)
            for item in limits.parse_many(rule)
            if not await self._limiter.hit(item, key)
        ]
        return max(waits) if waits else None

    async def blocked(self, key: str, rule: str) -> float | None:
        waits = [
            await self._wait(item, key)
            for item in limits.parse_many(rule)
            if not await self._limiter.test(item, key)
        ]
        return max(waits) if waits else None

    async def reset(self, key: str, rule: str) -> None:
        for item in limits.parse_many(rule):
            await self._storage.clear(item.key_for(key))

    async def sweep(self, *, limit: int) -> int:
        sweep = getattr(self._storage, "sweep", None)
        return await sweep(limit=limit) if sweep is not None else 0

    async def _wait(self, item: limits.RateLimitItem, key: str) -> float:
        stats = await self._limiter.get_window_stats(item, key)
        return max(1.0, stats.reset_time - self._clock())


def pg_throttle(db: Database, *, clock: Callable[[], float] = time.time) -> LimitsThrottle:
    """The throttle that every process on this database shares."""
    return LimitsThrottle(PgRateLimitStorage(db, clock=clock), clock=clock)

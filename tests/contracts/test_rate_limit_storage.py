"""accord's ``limits`` storage over PostgreSQL keeps the whole ``limits.aio.storage.Storage``
contract, not only the moving-window part accord's throttle uses: ``limits``' fixed-window
strategy counts, expires, clears and resets on it; a database that is away reads as a failed
``check`` and as ``StorageUnavailable``, the error every caller of the database expects."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from limits import parse
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from sqlalchemy import text

from accord.adapters.db.database import Database
from accord.adapters.db.engine import async_engine
from accord.adapters.db.rate_limits import PgRateLimitStorage
from accord.domain import errors

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(async_engine(database_url, pool_size=2))
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def storage(db: Database, clock: Clock) -> PgRateLimitStorage:
    return PgRateLimitStorage(db, clock=clock)


async def test_a_fixed_window_counts_hits_until_it_ends(
    storage: PgRateLimitStorage, clock: Clock
) -> None:
    assert [await storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert await storage.get("k") == 3
    assert await storage.get_expiry("k") == T0 + 60  # the window starts with the first hit
    clock.now += 30
    assert await storage.incr("k", 60, amount=2) == 5
    assert await storage.get_expiry("k") == T0 + 60  # a later hit does not move the window
    clock.now += 31
    assert await storage.get("k") == 0  # the window has ended
    assert await storage.incr("k", 60) == 1  # a new one starts now
    assert await storage.get_expiry("k") == clock.now + 60


async def test_limits_fixed_window_strategy_works_on_it(storage: PgRateLimitStorage) -> None:
    limiter, two = FixedWindowRateLimiter(storage), parse("2/minute")
    assert [await limiter.hit(two, "pat") for _ in range(3)] == [True, True, False]
    assert await limiter.test(two, "other")
    assert (await limiter.get_window_stats(two, "pat")).remaining == 0


async def test_a_key_with_no_hits_reads_as_empty(storage: PgRateLimitStorage) -> None:
    assert await storage.get("nobody") == 0
    assert await storage.get_expiry("nobody") == T0


async def test_clear_forgets_one_key_and_reset_every_key(storage: PgRateLimitStorage) -> None:
    for key in ("a", "a", "b", "c"):
        await storage.incr(key, 60)
    await storage.clear("a")
    assert [await storage.get(k) for k in "abc"] == [0, 1, 1]
    assert await storage.reset() == 2
    assert [await storage.get(k) for k in "abc"] == [0, 0, 0]


async def test_a_cost_above_the_limit_is_refused_and_stores_nothing(
    storage: PgRateLimitStorage,
) -> None:
    assert not await storage.acquire_entry("k", limit=2, expiry=60, amount=3)
    assert await storage.get_moving_window("k", 2, 60) == (T0, 0)
    assert await MovingWindowRateLimiter(storage).hit(parse("2/minute"), "k", cost=2)


async def test_check_answers_whether_the_database_is_there(
    storage: PgRateLimitStorage, clock: Clock
) -> None:
    assert await storage.check()
    away = Database(async_engine("postgresql://postgres@127.0.0.1:1/accord", pool_size=1))
    try:
        gone = PgRateLimitStorage(away, clock=clock)
        assert not await gone.check()
        with pytest.raises(errors.StorageUnavailable):  # not wrapped: limits passes it on
            await gone.get("k")
    finally:
        await away.dispose()


async def test_a_statement_the_database_cannot_run_is_storage_unavailable(db: Database) -> None:
    with pytest.raises(errors.StorageUnavailable) as failed:
        async with db.transaction() as conn:
            await conn.execute(text("SELECT 1 / 0"))
    assert "failed to run a statement" in failed.value.message


def test_only_a_postgresql_url_makes_an_engine() -> None:
    with pytest.raises(ValueError, match="not 'sqlite'"):
        async_engine("sqlite:///accord.db")

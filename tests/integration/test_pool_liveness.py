"""Pooled connections that died: a connection idle for a while is pinged and replaced before a
transaction gets it; one used a moment ago is handed out without a ping (a round trip saved on
every transaction, issue 12), so a server gone within that moment costs the transactions on
it one ``StorageUnavailable``, and the pool connects anew for the next, whether the statement
that met the dead connection ran through SQLAlchemy or on psycopg directly (``Direct``), in a
transaction (SQLAlchemy's pool) or as a statement of its own (autocommit, on the statement
pool: ``statement_pool.py``), where only ``Direct`` statements run."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.asyncio.exc import AsyncContextNotStarted

from accord.adapters.db.database import Database
from accord.adapters.db.direct import Direct
from accord.adapters.db.engine import async_engine
from accord.adapters.db.statement_pool import LentConnection, StatementPool
from accord.domain import errors


async def through_sqlalchemy(conn: AsyncConnection) -> int:
    return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


_BACKEND_PID = Direct(select(func.pg_backend_pid()))


async def on_psycopg(conn: AsyncConnection) -> int:
    return int(await _BACKEND_PID.scalar(conn, {}))


async def backend_pid(
    db: Database,
    run: Callable[[AsyncConnection], Awaitable[int]] = through_sqlalchemy,
    unit: str = "transaction",
) -> int:
    async with db.statement() if unit == "statement" else db.transaction() as conn:
        return await run(conn)


def database(url: str, *, ping_idle_after: float) -> Database:
    """One connection in each pool, so the next unit gets the connection the last one had."""
    engine = async_engine(url, pool_size=1, ping_idle_after=ping_idle_after)
    alone = StatementPool(engine, max_connections=1, ping_idle_after=ping_idle_after)
    return Database(engine, statements=alone)


def terminate(database_url: str, pid: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as admin:
        row = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
        assert row == (True,)
        # pg_terminate_backend only signals: wait until the backend is gone. Each check is a
        # statement of its own (autocommit): within one transaction pg_stat_activity is a
        # snapshot taken once, and a loop inside one DO block would wait for ever.
        deadline = time.monotonic() + 60
        exists = "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s), pg_sleep(0.01)"
        while admin.execute(exists, (pid,)).fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline, f"backend {pid} still there after 60 s"


@pytest.mark.parametrize("unit", ["transaction", "statement"])
async def test_an_idle_connection_killed_by_the_server_is_replaced_before_use(
    database_url: str, unit: str
) -> None:
    db = database(database_url, ping_idle_after=0)
    try:
        first = await backend_pid(db, on_psycopg, unit)
        terminate(database_url, first)
        second = await backend_pid(db, on_psycopg, unit)  # the ping found it dead: no error
        assert second != first
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("unit", "run"),
    [("transaction", through_sqlalchemy), ("transaction", on_psycopg), ("statement", on_psycopg)],
)
async def test_a_connection_used_a_moment_ago_is_not_pinged_so_its_death_fails_once(
    database_url: str, run: Callable[[AsyncConnection], Awaitable[int]], unit: str
) -> None:
    db = database(database_url, ping_idle_after=3600)
    try:
        first = await backend_pid(db, run, unit)
        terminate(database_url, first)
        with pytest.raises(errors.StorageUnavailable):
            await backend_pid(db, run, unit)
        second = await backend_pid(db, run, unit)  # the pool connected anew
        assert second != first
    finally:
        await db.dispose()


async def test_a_statement_alone_runs_in_autocommit_and_refuses_sqlalchemys_own_execution(
    database_url: str,
) -> None:
    """A statement alone is a transaction by itself, and a ``Direct`` one: run through
    SQLAlchemy it fails at once, on no connection, instead of running outside the unit."""
    db = database(database_url, ping_idle_after=3600)
    try:
        async with db.statement() as conn:
            await on_psycopg(conn)
            assert isinstance(conn, LentConnection)
            # Committed as it ran: no transaction left open on the connection.
            assert conn.driver.info.transaction_status == TransactionStatus.IDLE
        with pytest.raises(AsyncContextNotStarted):
            async with db.statement() as conn:
                await through_sqlalchemy(conn)
        assert await backend_pid(db, on_psycopg, "statement") > 0  # the connection came back
    finally:
        await db.dispose()


async def test_a_statement_alone_without_a_server_is_storage_unavailable() -> None:
    """The statement pool connects in the background; a statement waits for it only while
    the server is known to be there, so one without a server is answered, not left waiting."""
    db = database("postgresql://postgres@127.0.0.1:1/nothing", ping_idle_after=3600)
    try:
        with pytest.raises(errors.StorageUnavailable):
            await backend_pid(db, on_psycopg, "statement")
    finally:
        await db.dispose()


async def test_no_statement_alone_opens_connections_after_the_database_was_closed(
    database_url: str,
) -> None:
    """A late caller (a work notice after shutdown, say) cannot leave a pool open behind."""
    db = database(database_url, ping_idle_after=3600)
    assert await backend_pid(db, on_psycopg, "statement") > 0
    await db.dispose()
    with pytest.raises(errors.StorageUnavailable):
        await backend_pid(db, on_psycopg, "statement")

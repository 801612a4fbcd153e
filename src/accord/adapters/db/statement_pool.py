"""Statements alone, on psycopg's own pool (issue 12).

A statement that is a transaction by itself (``Database.statement``: autocommit, no ``BEGIN``,
no ``COMMIT``) needs a connection and nothing else. Lent by SQLAlchemy's pool, one costs about
270 µs of CPU where the statement on a bare psycopg connection costs 100 (a ``Connection`` and
its events, the switch into autocommit and back, the greenlet bridge for each); lent by
``psycopg_pool``, about 140 (``bench/units.py``). A create makes four or five of them and its
invitation mail two or three, so they run on a pool of their own: a few connections, always
in autocommit.

What this pool lends is a ``LentConnection``: typed as the SQLAlchemy connection the
repositories take, it carries the psycopg connection that ``Direct`` statements run on
(``adapters/db/direct.py``) and was never started on SQLAlchemy's side, so a statement run
through SQLAlchemy on it fails at once (``AsyncContextNotStarted``) rather than on a
connection nobody lent. A statement alone is a ``Direct`` one.

Liveness follows the engine's rule (``engine.py``): a connection that came back a moment ago
is lent as it is, one idle for longer is pinged first (and replaced if the ping fails). A
connection that died meanwhile fails its statement once (``StorageUnavailable``); psycopg_pool
sees it broken when it comes back and opens another.

psycopg_pool connects in the background and lets a statement wait for the connection, where
SQLAlchemy connects in the request and fails at once if the server is down. So a statement
waits long for a connection only while the server is known to be there: the pool has
connected since it was opened, or since a connection it lent came back broken; otherwise it
waits ``UNKNOWN_WAIT_SECONDS`` and is answered "storage unavailable", as a transaction would
be at once.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection as DriverConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from accord.adapters.db.engine import PING_IDLE_AFTER_SECONDS

# Connections of the pool at most: a statement alone holds one for a round trip, so a few
# serve many requests (SQLAlchemy's pool keeps its own for transactions).
MAX_CONNECTIONS = 4
# How long a statement waits for a connection before it is answered "storage unavailable":
# longer than any statement alone takes, short enough that a request without a database
# fails while its client still waits. While the server has not been seen since the pool
# opened or lost a connection, long enough to connect to it, no longer.
WAIT_SECONDS = 10.0
UNKNOWN_WAIT_SECONDS = 1.0


class LentConnection(AsyncConnection):
    """A connection of the statement pool, as the repositories see a connection: ``Direct``
    statements run on ``driver``; SQLAlchemy's own execution is refused (never started)."""

    def __init__(self, engine: AsyncEngine, driver: DriverConnection[Any]) -> None:
        super().__init__(engine)
        self.driver = driver


class StatementPool:
    """Autocommit connections for statements alone, opened on first use (in the event loop
    that uses them) and closed with the engine."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_connections: int = MAX_CONNECTIONS,
        ping_idle_after: float = PING_IDLE_AFTER_SECONDS,
    ) -> None:
        self._engine = engine
        self._max = max_connections
        self._ping_idle_after = ping_idle_after
        self._pool: AsyncConnectionPool[DriverConnection[Any]] | None = None
        self._opening = asyncio.Lock()
        self._server_seen = False  # a connection made since the pool opened or lost one
        self._closed = False
        self._returned_at: weakref.WeakKeyDictionary[DriverConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[LentConnection]:
        pool = self._pool or await self._open()
        driver = await pool.getconn(WAIT_SECONDS if self._server_seen else UNKNOWN_WAIT_SECONDS)
        try:
            yield LentConnection(self._engine, driver)
        finally:
            self._returned_at[driver] = time.monotonic()
            if driver.broken:
                self._server_seen = False  # until the pool connects again
            await pool.putconn(driver)  # a broken one is discarded and replaced

    async def close(self) -> None:
        """Close the connections; a statement after this one fails (none is opened again)."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _open(self) -> AsyncConnectionPool[DriverConnection[Any]]:
        async with self._opening:
            if self._closed:
                raise psycopg.OperationalError("the database is closed (accord is shutting down)")
            if self._pool is None:
                sync = self._engine.sync_engine
                # The arguments SQLAlchemy connects with (its adapters among them): the same
                # server, the same type conversions.
                args, kwargs = sync.dialect.create_connect_args(sync.url)
                pool: AsyncConnectionPool[DriverConnection[Any]] = AsyncConnectionPool(
                    " ".join(args),  # psycopg's dialect passes all by keyword: empty
                    kwargs={**kwargs, "autocommit": True},
                    min_size=1,
                    max_size=self._max,
                    timeout=WAIT_SECONDS,
                    configure=self._seen,
                    check=self._ping_if_idle,
                    name="accord-statements",
                    open=False,
                )
                await pool.open()
                self._pool = pool
            return self._pool

    async def _seen(self, driver: DriverConnection[Any]) -> None:
        self._server_seen = True  # psycopg_pool made a connection

    async def _ping_if_idle(self, driver: DriverConnection[Any]) -> None:
        returned_at = self._returned_at.pop(driver, None)
        if returned_at is not None and time.monotonic() - returned_at >= self._ping_idle_after:
            await driver.execute("SELECT 1")  # raises if it died: psycopg_pool takes another

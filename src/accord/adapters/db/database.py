"""The Database: an engine plus the ways to run a transaction (with errors translated)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection as DriverConnection
from psycopg.pq import TransactionStatus
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from accord.adapters.db.errors import translated
from accord.adapters.db.statement_pool import StatementPool


class TransactionConnection(AsyncConnection):
    """A connection of SQLAlchemy's pool in a transaction, as the repositories see one, with
    SQLAlchemy's ``Connection`` made only if something asks for it (issue 12).

    ``Direct`` statements run on ``driver``, the pooled psycopg connection, which begins the
    transaction with the first of them; ``commit`` ends it there. A ``Connection`` and its
    transaction, greenlet switches to begin and commit them and SQLAlchemy's bookkeeping, cost
    about 120 µs of CPU a transaction (``bench/units.py``: 475 → 355 µs), and a create's
    transactions need none. A statement run through SQLAlchemy (or a hook given the
    connection) reads ``sync_connection`` and so makes the ``Connection`` then, on the same
    pooled connection: the same transaction, which SQLAlchemy joins as it would have begun it
    (psycopg begins implicitly, so SQLAlchemy's begin sends nothing).
    """

    _made: Connection | None  # set by AsyncConnection's constructor, through the setter

    def __init__(self, engine: AsyncEngine, pooled: PoolProxiedConnection) -> None:
        super().__init__(engine)
        self._pooled = pooled
        driver = pooled.driver_connection
        assert isinstance(driver, DriverConnection)
        self.driver: DriverConnection[Any] = driver

    @property  # type: ignore[override]
    def sync_connection(self) -> Connection:
        if self._made is None:
            self._made = self._assign_proxied(Connection(self.sync_engine, connection=self._pooled))
        return self._made

    @sync_connection.setter
    def sync_connection(self, made: Connection | None) -> None:
        self._made = made  # None from AsyncConnection's constructor: not made yet

    async def commit(self) -> None:
        """Commit what SQLAlchemy and ``Direct`` statements did, whoever began it."""
        if self._made is not None:
            await super().commit()  # SQLAlchemy's transaction, if it had one: the same one
        if self.driver.info.transaction_status != TransactionStatus.IDLE:
            await self.driver.commit()

    async def close(self) -> None:
        """Back to the pool (a transaction still open is rolled back on the way, as always)."""
        if self._made is not None:
            await super().close()
        else:
            await greenlet_spawn(self._pooled.close)

    async def abandon(self) -> None:
        """Roll back and go back to the pool, as SQLAlchemy does it: it runs the rollback to the
        end even if the caller is cancelled meanwhile, and when the connection turns out lost,
        it invalidates the pool (``engine.py``)."""
        sync = self.sync_connection
        if sync.closed:
            return
        if not sync.in_transaction() and not sync.invalidated:
            # A Direct statement began it on psycopg: SQLAlchemy takes it on (if none did, its
            # rollback finds nothing to roll back and sends nothing).
            await self.begin()
        await self.__aexit__(None, None, None)


class Database:
    """Transactions on accord's PostgreSQL database."""

    def __init__(self, engine: AsyncEngine, *, statements: StatementPool | None = None) -> None:
        self.engine = engine
        # Statements alone run on a pool of their own, psycopg's (statement_pool.py).
        self._statements = statements or StatementPool(engine)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction: committed if the block returns, rolled back if not."""
        async with translated():
            conn = TransactionConnection(self.engine, await self.engine.raw_connection())
            try:
                yield conn
                await conn.commit()
            except BaseException:
                await conn.abandon()
                raise
            await conn.close()

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one statement, a transaction by itself (autocommit): no ``BEGIN``
        and no ``COMMIT``, two round trips fewer than ``transaction`` (issue 12). One statement
        only: a second would commit on its own, not together with the first. A ``Direct`` one:
        the connection comes from the statement pool, not from SQLAlchemy's."""
        async with translated(), self._statements.lend() as conn:
            yield conn

    async def dispose(self) -> None:
        await self._statements.close()
        await self.engine.dispose()

"""The Database: an engine plus the ways to run a transaction (with errors translated)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from accord.adapters.db.errors import translated
from accord.adapters.db.statement_pool import StatementPool


class Database:
    """Transactions on accord's PostgreSQL database."""

    def __init__(self, engine: AsyncEngine, *, statements: StatementPool | None = None) -> None:
        self.engine = engine
        # Statements alone run on a pool of their own, psycopg's (statement_pool.py).
        self._statements = statements or StatementPool(engine)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction: committed if the block returns, rolled back if not."""
        async with translated(), self.engine.begin() as conn:
            yield conn

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

"""The Database: an engine plus the ways to run a transaction (with errors translated)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from accord.adapters.db.errors import translated


class Database:
    """Transactions on accord's PostgreSQL database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # The same pool; each connection it hands out in autocommit until it is returned.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction: committed if the block returns, rolled back if not."""
        async with translated(), self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one statement, a transaction by itself (autocommit): no ``BEGIN``
        and no ``COMMIT``, two round trips fewer than ``transaction`` (issue 12). One statement
        only: a second would commit on its own, not together with the first."""
        async with translated(), self._autocommit.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()

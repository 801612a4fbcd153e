"""The store port on PostgreSQL: one ``PgTransaction`` per unit of work, one repository per
aggregate, each in its own module (users.py, organizations.py, operations.py, outbox.py,
tokens.py, drift.py). Database errors are translated once, by ``Database.transaction``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.audit import PgAuditLog
from accord.adapters.db.bulk import PgBulk
from accord.adapters.db.database import Database
from accord.adapters.db.drift import PgDriftQueries, PgDriftSession
from accord.adapters.db.events import PgChangeFeed
from accord.adapters.db.invitations import PgInvitations
from accord.adapters.db.mailbox import PgMailbox
from accord.adapters.db.operations import PgOperations
from accord.adapters.db.organizations import PgMemberships, PgOrganizations
from accord.adapters.db.outbox import PgOneTimeTokens, PgOutbox
from accord.adapters.db.scim import PgScimGroups, PgScimUsers
from accord.adapters.db.tokens import PgApiTokens
from accord.adapters.db.users import PgLinks, PgUsers
from accord.adapters.db.verifications import PgVerifications
from accord.adapters.db.webhooks import PgWebhooks
from accord.adapters.db.work_signal import WorkNotice, WorkNotifier
from accord.domain.changes import ChangeRecorder


class PgTransaction:
    """Every repository on one connection, in one transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        # Marked by the repositories that leave work for a worker: a notice after the commit.
        self.work = WorkNotice()
        self.users = PgUsers(conn)
        self.links = PgLinks(conn)
        self.memberships = PgMemberships(conn)
        self.organizations = PgOrganizations(conn)
        self.operations = PgOperations(conn, self.work)
        self.events = PgChangeFeed(conn, self.work)
        self.webhooks = PgWebhooks(conn, self.work)
        self.audit = ChangeRecorder(PgAuditLog(conn), self)
        self.outbox = PgOutbox(conn, self.work)
        self.one_time_tokens = PgOneTimeTokens(conn)
        self.api_tokens = PgApiTokens(conn)
        self.drift = PgDriftQueries(conn)
        self.verifications = PgVerifications(conn)
        self.invitations = PgInvitations(conn)
        self.mailbox = PgMailbox(conn)
        self.scim_users = PgScimUsers(conn)
        self.scim_groups = PgScimGroups(conn)
        self.bulk = PgBulk(conn, self.work)  # set-wise creation (domain/bulk_store.py)

    @property
    def connection(self) -> AsyncConnection:
        return self._conn

    async def try_singleton_lock(self, key: int) -> bool:
        query = select(func.pg_try_advisory_xact_lock(key))
        return bool((await self._conn.execute(query)).scalar_one())

    async def ping(self) -> None:
        await self._conn.execute(select(1))


class PgStore:
    """accord's PostgreSQL database behind the ``Store`` port."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.notifier = WorkNotifier(db)

    def transaction(self) -> AbstractAsyncContextManager[PgTransaction]:
        return self._unit(self.db.transaction())

    def statement(self) -> AbstractAsyncContextManager[PgTransaction]:
        return self._unit(self.db.statement())  # autocommit: no BEGIN, no COMMIT

    @asynccontextmanager
    async def _unit(
        self, opened: AbstractAsyncContextManager[AsyncConnection]
    ) -> AsyncIterator[PgTransaction]:
        async with opened as conn:
            tx = PgTransaction(conn)
            yield tx
        if tx.work.due:  # committed: tell the workers (see work_signal.py for why not inside)
            self.notifier.poke()

    async def aclose(self) -> None:
        """Send the pending work notice; before the database is disposed."""
        await self.notifier.aclose()

    def drift_session(self, provider: str) -> PgDriftSession:
        return PgDriftSession(self.db.engine, provider)

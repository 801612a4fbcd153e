"""``InMemoryStore``: the store port in memory, for tests of the services that need no database.

It keeps PostgreSQL's promises that the services rely on: the unique e-mail, slug, personal
owner and (caller, idempotency key) indexes, the foreign keys' cascades, compare-and-set
updates, and transactions that commit whole or not at all. Transactions run one at a time (a
single lock), which is one of the orders PostgreSQL could have chosen: races are proven on the
real store (tests/integration, tests/crash), logic here. ``tests/contracts/test_store.py`` runs
the same cases against both, so the two cannot drift apart.

Not here: the reconcile session (``drift_session``), which stages a listing in a temporary table
and joins it in SQL; reconcile is tested on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from accord.domain.changes import ChangeRecorder
from accord.domain.ports import Clock
from accord.domain.store import DriftSession
from accord.testing.memory_audit import MemoryAudit
from accord.testing.memory_bulk import MemoryBulk
from accord.testing.memory_events import MemoryChangeFeed
from accord.testing.memory_invitations import MemoryInvitations
from accord.testing.memory_mailbox import MemoryMailbox
from accord.testing.memory_people import (
    MemoryLinks,
    MemoryMemberships,
    MemoryOrganizations,
    MemoryUsers,
)
from accord.testing.memory_scim import MemoryScimGroups, MemoryScimUsers
from accord.testing.memory_tables import Tables
from accord.testing.memory_verifications import MemoryVerifications
from accord.testing.memory_webhooks import MemoryWebhooks
from accord.testing.memory_work import (
    MemoryApiTokens,
    MemoryDriftQueries,
    MemoryOneTimeTokens,
    MemoryOperations,
    MemoryOutbox,
)


class MemoryTransaction:
    """Every repository over one working copy of the tables."""

    def __init__(self, tables: Tables, clock: Clock, ids: itertools.count[int]) -> None:
        self.users = MemoryUsers(tables, clock, ids)
        self.links = MemoryLinks(tables, clock, ids)
        self.memberships = MemoryMemberships(tables, clock, ids)
        self.organizations = MemoryOrganizations(tables, clock, ids)
        self.operations = MemoryOperations(tables, clock, ids)
        self.events = MemoryChangeFeed(tables, clock, ids)
        self.audit = ChangeRecorder(MemoryAudit(tables, clock, ids), self)
        self.outbox = MemoryOutbox(tables, clock, ids)
        self.one_time_tokens = MemoryOneTimeTokens(tables, clock, ids)
        self.api_tokens = MemoryApiTokens(tables, clock, ids)
        self.drift = MemoryDriftQueries(tables, clock, ids)
        self.verifications = MemoryVerifications(tables, clock, ids)
        self.invitations = MemoryInvitations(tables, clock, ids)
        self.mailbox = MemoryMailbox(tables, clock, ids)
        self.scim_users = MemoryScimUsers(tables, clock, ids)
        self.scim_groups = MemoryScimGroups(tables, clock, ids)
        self.webhooks = MemoryWebhooks(tables, clock, ids)
        self.bulk = MemoryBulk(tables, clock, ids)  # set-wise creation (domain/bulk_store.py)

    @property
    def connection(self) -> None:
        """There is no connection: a hook that needs one cannot run on this store."""
        return None

    async def try_singleton_lock(self, key: int) -> bool:
        return True  # transactions run one at a time: nobody else can hold it

    async def ping(self) -> None:
        return None


class InMemoryStore:
    """The store port in memory (see the module docstring for what it keeps and what not)."""

    def __init__(self, clock: Clock) -> None:
        self.tables = Tables()
        self._clock = clock
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryTransaction]:
        """Run the block on a copy of the tables; keep the copy only if the block returns."""
        async with self._lock:
            working = copy.deepcopy(self.tables)
            yield MemoryTransaction(working, self._clock, self._ids)
            self.tables = working

    def statement(self) -> AbstractAsyncContextManager[MemoryTransaction]:
        """As ``transaction``: a single call is as atomic in memory as in PostgreSQL."""
        return self.transaction()

    def drift_session(self, provider: str) -> DriftSession:
        raise NotImplementedError("reconcile stages the listing in PostgreSQL: use PgStore")

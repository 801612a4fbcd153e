"""The change feed's store contract, on PostgreSQL and in memory: an audited change writes its
event in its own transaction (none if it rolls back, none for an action that changes nothing);
versions grow per subject; only assigned events are read, numbered after commit in write order;
retention deletes from the front and moves the horizon. On PostgreSQL also the race the feed
exists for: an event that commits late is numbered after the ones a reader has passed."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest

from accord.adapters.db.database import Database
from accord.adapters.db.engine import async_engine
from accord.adapters.db.store import PgStore
from accord.domain.model import OrganizationKind
from accord.domain.records import AuditEvent, FeedQuery
from accord.domain.store import Store
from tests.contracts import test_store

store = test_store.store  # the same fixture: each case on both stores


async def feed(store: Store, after: int = 0, **kw) -> list:
    async with store.transaction() as tx:
        await tx.events.assign(limit=1000)
    async with store.transaction() as tx:
        return await tx.events.page(FeedQuery(after=after, limit=1000, **kw))


async def renamed(store: Store, user_id: UUID, name: str, op_id: UUID | None = None) -> None:
    async with store.transaction() as tx:
        await tx.users.update(user_id, full_name=name)
        await tx.audit.record(
            AuditEvent("t", "user.updated", subject_user_id=user_id, operation_id=op_id)
        )


async def test_an_audited_change_writes_its_event_with_the_subject_as_it_is_now(
    store: Store,
) -> None:
    user_id = await test_store.user(store)
    async with store.transaction() as tx:
        op = await tx.operations.insert(test_store.operation("key-1"))
    await renamed(store, user_id, "Ada Lovelace", op.id)
    (event,) = await feed(store)
    change = event.change
    assert (change.type, change.subject_type, change.subject_id) == (
        "user.updated",
        "user",
        str(user_id),
    )
    assert change.data["full_name"] == "Ada Lovelace" and change.data["id"] == str(user_id)
    assert change.version == 1 and event.position == 1
    assert (change.operation_id, change.idempotency_key) == (op.id, "key-1")
    await renamed(store, user_id, "Ada King")
    second = (await feed(store, after=1))[0].change
    assert second.version == 2 and second.changed == ("full_name",)


async def test_no_event_without_a_committed_change(store: Store) -> None:
    user_id = await test_store.user(store)
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.audit.record(AuditEvent("t", "user.updated", subject_user_id=user_id))
            raise RuntimeError("the change fails")
    async with store.transaction() as tx:
        await tx.audit.record(AuditEvent("t", "create_user.compensated", subject_user_id=user_id))
        await tx.audit.record(AuditEvent("t", "user.suspended_repeated", subject_user_id=user_id))
    assert await feed(store) == []


async def test_only_assigned_events_are_read_in_write_order_and_filtered(store: Store) -> None:
    team = OrganizationKind.TEAM
    acme = await test_store.org(store, kind=team)
    other = await test_store.org(store, "other", kind=team)
    async with store.transaction() as tx:
        await tx.audit.record(AuditEvent("t", "organization.created", organization_id=acme))
        await tx.audit.record(AuditEvent("t", "organization.created", organization_id=other))
        await tx.audit.record(AuditEvent("t", "organization.updated", organization_id=acme))
    async with store.transaction() as tx:
        assert await tx.events.page(FeedQuery()) == []  # not numbered yet: not readable
    everything = await feed(store)
    assert [e.position for e in everything] == [1, 2, 3]
    assert [e.change.organization_id for e in everything] == [acme, other, acme]
    assert [e.change.version for e in everything] == [1, 1, 2]
    only_acme = await feed(store, organization_id=acme)
    assert [e.position for e in only_acme] == [1, 3]
    updates = await feed(store, types=("organization.updated",))
    assert [e.position for e in updates] == [3]
    assert [e.position for e in await feed(store, after=2)] == [3]
    async with store.transaction() as tx:
        assert await tx.events.assign(limit=10) == 0  # nothing left to number


async def test_retention_deletes_from_the_front_and_moves_the_horizon(store: Store) -> None:
    user_id = await test_store.user(store)
    for name in ("A", "B", "C"):
        await renamed(store, user_id, name)
    await feed(store)
    async with store.transaction() as tx:
        assert await tx.events.horizon() == 0
        assert await tx.events.delete_older_than(0, limit=2) == 2
        assert await tx.events.horizon() == 2
    assert [e.position for e in await feed(store)] == [3]
    await renamed(store, user_id, "D")
    assert [e.position for e in await feed(store, after=3)] == [4]


async def test_an_event_that_commits_late_is_numbered_after_what_readers_passed(
    database_url: str,
) -> None:
    db = Database(async_engine(database_url, pool_size=4))
    store = PgStore(db)
    try:
        early, late = await test_store.user(store), await test_store.user(store, "b@example.com")
        held, go = asyncio.Event(), asyncio.Event()

        async def slow_writer() -> None:  # writes first, commits last
            async with store.transaction() as tx:
                await tx.audit.record(AuditEvent("t", "user.updated", subject_user_id=early))
                held.set()
                await go.wait()

        slow = asyncio.create_task(slow_writer())
        await held.wait()
        await renamed(store, late, "Late")
        seen = await feed(store)
        assert [(e.position, e.change.user_id) for e in seen] == [(1, late)]
        go.set()
        await slow
        after = await feed(store, after=seen[-1].position)
        assert [(e.position, e.change.user_id) for e in after] == [(2, early)]
    finally:
        await db.dispose()


async def test_a_batch_of_events_gets_the_versions_and_changes_one_by_one_would(
    store: Store,
) -> None:
    """``record_many`` (set-wise import) appends its events in one statement on PostgreSQL: a
    subject seen before grows its version and is diffed against its last document; new
    subjects start at 1 with every field; each event carries its operation's key; order kept."""
    ada = await test_store.user(store, "ada@example.com")
    bob = await test_store.user(store, "bob@example.com")
    cy = await test_store.user(store, "cy@example.com")
    await renamed(store, ada, "Ada Lovelace")
    async with store.transaction() as tx:
        op = await tx.operations.insert(test_store.operation("batch-key"))
    async with store.transaction() as tx:
        for user_id in (ada, bob, cy):
            await tx.users.update(user_id, full_name="Renamed")
        await tx.audit.record_many(
            [
                AuditEvent("t", "user.updated", subject_user_id=u, operation_id=op.id)
                for u in (cy, ada, bob)
            ]
        )
    events = [e.change for e in await feed(store, after=1)]
    assert [c.user_id for c in events] == [cy, ada, bob]
    first = {c.user_id: c for c in events}
    assert (first[ada].version, first[ada].changed) == (2, ("full_name",))
    for new in (bob, cy):
        assert first[new].version == 1 and "full_name" in first[new].changed
        assert first[new].data["full_name"] == "Renamed"
    assert {(c.operation_id, c.idempotency_key) for c in events} == {(op.id, "batch-key")}

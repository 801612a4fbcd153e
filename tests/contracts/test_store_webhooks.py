"""The webhook store's contract, on PostgreSQL and in memory: endpoints scoped by organization;
fan-out that never stores an event twice for one endpoint; leasing that keeps each subject's
deliveries in feed order, leases different subjects side by side and at most ``per_endpoint`` at
once; finishing (success, retry at a time, giving up); the deliveries listing; whom to mail."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from accord.domain import errors
from accord.domain.model import OrganizationKind, UserStatus
from accord.domain.records import AuditEvent
from accord.domain.store import Store
from accord.domain.webhooks import Attempt, NewEndpoint, WebhookEndpoint
from tests.contracts import test_store

store = test_store.store  # the same fixture: each case on both stores

OK = Attempt(status=204, latency_ms=3.0)
FAILED = Attempt(status=500, latency_ms=7.0, error="HTTP 500")


async def endpoint(store: Store, organization_id: UUID | None = None, **kw: Any) -> WebhookEndpoint:
    async with store.transaction() as tx:
        return await tx.webhooks.create(
            NewEndpoint(
                id=uuid4(),
                url=kw.pop("url", "https://hooks.example.com/in"),
                event_types=kw.pop("event_types", ()),
                organization_id=organization_id,
                sealed_secrets=b"sealed",
            )
        )


def row(position: int, subject: str, **kw: Any) -> dict[str, Any]:
    return {
        "event_id": kw.pop("event_id", uuid4()),
        "event_type": kw.pop("event_type", "user.updated"),
        "position": position,
        "subject": subject,
        "payload": kw.pop("payload", {"type": "user.updated", "data": {"n": position}}),
    }


async def add(store: Store, endpoint_id: UUID, *rows: dict[str, Any]) -> int:
    async with store.transaction() as tx:
        return await tx.webhooks.add_deliveries(endpoint_id, rows)


async def lease(store: Store, *, limit: int = 100, per_endpoint: int = 8, lease: float = 60.0):
    async with store.transaction() as tx:
        found = await tx.webhooks.lease_due(
            limit=limit, per_endpoint=per_endpoint, lease_seconds=lease
        )
    return found


async def finish(store: Store, delivery_id: int, attempt: Attempt = OK, **kw: Any) -> None:
    async with store.transaction() as tx:
        await tx.webhooks.finish(
            delivery_id,
            attempt,
            status=kw.pop("status", "succeeded"),
            retry_in=kw.pop("retry_in", None),
        )


async def listed(store: Store, endpoint_id: UUID, limit: int = 100) -> list:
    async with store.transaction() as tx:
        return await tx.webhooks.deliveries(endpoint_id, limit=limit)


def positions(deliveries: list) -> list[int]:
    return [d.position for d in deliveries]


# -- endpoints ------------------------------------------------------------------------------------


async def test_an_endpoint_starts_enabled_at_the_feed_head(store: Store) -> None:
    acme = await test_store.org(store, kind=OrganizationKind.TEAM)
    async with store.transaction() as tx:
        await tx.audit.record(AuditEvent("t", "organization.created", organization_id=acme))
    async with store.transaction() as tx:
        assert await tx.events.assign(limit=10) == 1
    made = await endpoint(store, acme, event_types=("user.created", "user.updated"))
    assert (made.enabled, made.disabled_reason, made.failing_since) == (True, None, None)
    assert made.cursor == 1  # it hears what commits from now on, not the past
    assert made.event_types == ("user.created", "user.updated")
    assert (made.organization_id, made.sealed_secrets) == (acme, b"sealed")
    async with store.transaction() as tx:
        assert await tx.webhooks.get(made.id) == made
        assert await tx.webhooks.get(made.id, lock=True) == made
        assert await tx.webhooks.get(uuid4()) is None


async def test_endpoints_are_listed_oldest_first_and_by_organization(store: Store) -> None:
    acme, other = await test_store.org(store), await test_store.org(store, "other")
    platform = await endpoint(store)
    first, second = await endpoint(store, acme), await endpoint(store, acme)
    theirs = await endpoint(store, other)
    async with store.transaction() as tx:
        everything = [e.id for e in await tx.webhooks.all(None)]
        assert everything == [platform.id, first.id, second.id, theirs.id]
        assert [e.id for e in await tx.webhooks.all(acme)] == [first.id, second.id]
        assert [e.id for e in await tx.webhooks.all(other)] == [theirs.id]
        assert await tx.webhooks.all(uuid4()) == []


async def test_update_sets_what_is_given_and_delete_removes_the_deliveries(store: Store) -> None:
    made = await endpoint(store)
    await add(store, made.id, row(1, "user:a"))
    async with store.transaction() as tx:
        changed = await tx.webhooks.update(
            made.id, event_types=["user.created"], enabled=False, disabled_reason="gone", cursor=7
        )
        assert changed is not None
        assert changed.event_types == ("user.created",)
        assert (changed.enabled, changed.disabled_reason, changed.cursor) == (False, "gone", 7)
        assert (changed.url, changed.created_at) == (made.url, made.created_at)
        assert changed.updated_at >= made.updated_at
        assert await tx.webhooks.get(made.id) == changed
        assert await tx.webhooks.update(uuid4(), enabled=True) is None
    async with store.transaction() as tx:
        assert await tx.webhooks.delete(made.id) is True
        assert await tx.webhooks.delete(made.id) is False
        assert await tx.webhooks.get(made.id) is None
        assert await tx.webhooks.deliveries(made.id, limit=10) == []


async def test_an_organization_that_goes_takes_its_endpoints_with_it(store: Store) -> None:
    acme = await test_store.org(store)
    theirs, platform = await endpoint(store, acme), await endpoint(store)
    await add(store, theirs.id, row(1, "user:a"))
    async with store.transaction() as tx:
        await tx.organizations.delete(acme)
    async with store.transaction() as tx:
        assert await tx.webhooks.get(theirs.id) is None
        assert [e.id for e in await tx.webhooks.all(None)] == [platform.id]
    assert await lease(store) == []


async def test_a_failed_transaction_keeps_no_endpoint(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            made = await tx.webhooks.create(
                NewEndpoint(uuid4(), "https://x.example", (), None, b"s")
            )
            raise RuntimeError("the block fails")
    async with store.transaction() as tx:
        assert await tx.webhooks.get(made.id) is None
        assert await tx.webhooks.all(None) == []


# -- fan-out --------------------------------------------------------------------------------------


async def test_fanout_locks_the_enabled_endpoints_in_id_order(store: Store) -> None:
    made = [await endpoint(store) for _ in range(4)]
    async with store.transaction() as tx:
        await tx.webhooks.update(made[0].id, enabled=False)
    enabled = sorted(e.id for e in made[1:])
    async with store.transaction() as tx:
        assert [e.id for e in await tx.webhooks.lock_for_fanout(limit=10)] == enabled
        assert [e.id for e in await tx.webhooks.lock_for_fanout(limit=2)] == enabled[:2]


async def test_an_event_is_stored_once_per_endpoint_and_a_replay_makes_it_pending_again(
    store: Store,
) -> None:
    one, two = await endpoint(store), await endpoint(store)
    event = uuid4()
    payload = {"type": "user.updated", "data": {"name": "Ada", "tags": ["a"]}}
    assert await add(store, one.id, row(1, "user:a", event_id=event, payload=payload)) == 1
    payload["data"]["tags"].append("changed after the insert")
    assert await add(store, two.id, row(1, "user:a", event_id=event)) == 1
    assert await add(store, one.id) == 0
    (first,) = await listed(store, one.id)
    assert first.payload == {"type": "user.updated", "data": {"name": "Ada", "tags": ["a"]}}
    assert (first.status, first.attempts, first.event_id, first.subject) == (
        "pending",
        0,
        event,
        "user:a",
    )
    (leased,) = [d for d in await lease(store) if d.endpoint_id == one.id]
    await finish(store, leased.id)
    replayed = {"type": "user.updated", "data": {"name": "Ada King"}}
    assert await add(store, one.id, row(5, "user:a", event_id=event, payload=replayed)) == 1
    (again,) = await listed(store, one.id)  # the same row: no second delivery of the event
    assert (again.id, again.status, again.attempts, again.position) == (first.id, "pending", 0, 5)
    assert again.payload == replayed
    assert [d.id for d in await lease(store)] == [again.id]  # due at once, unleased


# -- leasing --------------------------------------------------------------------------------------


async def test_a_subject_waits_for_its_earlier_delivery_others_go_in_parallel(
    store: Store,
) -> None:
    made = await endpoint(store)
    await add(store, made.id, row(1, "user:a"), row(2, "user:a"), row(3, "user:b"))
    first = await lease(store)
    assert positions(first) == [1, 3]  # user:a's second waits for its first
    assert all(d.attempts == 1 for d in first)  # leasing counts the attempt
    assert await lease(store) == []  # leased ones are not leased twice, 2 still waits
    await finish(store, first[0].id)
    (second,) = await lease(store)
    assert (second.position, second.subject, second.attempts) == (2, "user:a", 1)


async def test_a_pending_retry_holds_back_its_subject_until_given_up(store: Store) -> None:
    made = await endpoint(store)
    await add(store, made.id, row(1, "user:a"), row(2, "user:a"))
    (first,) = await lease(store)
    await finish(store, first.id, FAILED, status="pending", retry_in=3600.0)
    assert await lease(store) == []  # not due, and user:a's later event waits behind it
    (failed,) = [d for d in await listed(store, made.id) if d.id == first.id]
    assert (failed.status, failed.last_status, failed.last_error) == ("pending", 500, "HTTP 500")
    assert failed.last_latency_ms == 7.0 and failed.delivered_at is None
    await finish(store, first.id, FAILED, status="failed", retry_in=None)  # given up
    assert positions(await lease(store)) == [2]


async def test_a_retry_at_now_is_due_again_with_its_attempts_counted(store: Store) -> None:
    made = await endpoint(store)
    await add(store, made.id, row(1, "user:a"))
    (first,) = await lease(store)
    await finish(store, first.id, FAILED, status="pending", retry_in=0.0)
    (again,) = await lease(store)
    assert (again.id, again.attempts, again.last_status) == (first.id, 2, 500)


async def test_a_lease_that_outlives_its_worker_makes_the_delivery_due_again(
    store: Store,
) -> None:
    made = await endpoint(store)
    await add(store, made.id, row(1, "user:a"))
    (first,) = await lease(store, lease=-1.0)  # its worker died: the lease has run out
    (again,) = await lease(store)
    assert (again.id, again.attempts) == (first.id, 2)
    assert await lease(store) == []


async def test_leasing_is_bounded_per_endpoint_counting_leases_under_way(store: Store) -> None:
    busy, quiet = await endpoint(store), await endpoint(store)
    await add(store, busy.id, *(row(n, f"user:{n}") for n in range(1, 6)))
    await add(store, quiet.id, row(10, "user:q"))
    first = await lease(store, per_endpoint=2)
    mine = [d for d in first if d.endpoint_id == busy.id]
    assert positions(mine) == [1, 2]  # the oldest first
    assert [d.position for d in first if d.endpoint_id == quiet.id] == [10]
    assert await lease(store, per_endpoint=2) == []  # two under way already
    await finish(store, mine[0].id)
    assert positions(await lease(store, per_endpoint=2)) == [3]


async def test_leasing_takes_at_most_limit_and_skips_disabled_endpoints(store: Store) -> None:
    on, off = await endpoint(store), await endpoint(store)
    await add(store, on.id, *(row(n, f"user:{n}") for n in range(1, 4)))
    await add(store, off.id, row(9, "user:x"))
    async with store.transaction() as tx:
        await tx.webhooks.update(off.id, enabled=False)
    assert positions(await lease(store, limit=2)) == [1, 2]
    assert positions(await lease(store, limit=2)) == [3]
    assert await lease(store) == []


# -- finishing and listing ------------------------------------------------------------------------


async def test_a_success_records_the_attempt_and_ends_the_delivery(store: Store) -> None:
    made = await endpoint(store)
    await add(store, made.id, row(1, "user:a"))
    (first,) = await lease(store)
    await finish(store, first.id, OK)
    (done,) = await listed(store, made.id)
    assert (done.status, done.attempts, done.last_status, done.last_error) == (
        "succeeded",
        1,
        204,
        None,
    )
    assert done.delivered_at is not None and done.last_latency_ms == 3.0
    assert await lease(store) == []


async def test_an_unknown_status_is_refused(store: Store) -> None:
    made = await endpoint(store)
    await add(store, made.id, row(1, "user:a"))
    (first,) = await lease(store)
    with pytest.raises(errors.ConstraintViolated):
        await finish(store, first.id, OK, status="delivered")


async def test_deliveries_are_listed_newest_first_per_endpoint(store: Store) -> None:
    one, two = await endpoint(store), await endpoint(store)
    await add(store, one.id, row(1, "user:a"), row(3, "user:b"), row(2, "user:c"))
    await add(store, two.id, row(4, "user:a"))
    assert positions(await listed(store, one.id)) == [3, 2, 1]
    assert positions(await listed(store, one.id, limit=2)) == [3, 2]
    assert positions(await listed(store, two.id)) == [4]
    assert await listed(store, uuid4()) == []


async def test_the_live_platform_admins_are_whom_to_mail(store: Store) -> None:
    people = {
        "zoe@example.com": (UserStatus.ACTIVE, True),
        "ada@example.com": (UserStatus.PENDING, True),
        "sus@example.com": (UserStatus.SUSPENDED, True),
        "bob@example.com": (UserStatus.ACTIVE, False),
    }
    for email, (status, admin) in people.items():
        user_id = await test_store.user(store, email)
        async with store.transaction() as tx:
            await tx.users.update(user_id, status=status, is_platform_admin=admin)
    retired = await test_store.user(store, "old@example.com")
    async with store.transaction() as tx:
        await tx.users.update(retired, status=UserStatus.ACTIVE, is_platform_admin=True)
        await tx.users.retire(retired)
    async with store.transaction() as tx:
        assert await tx.webhooks.platform_admin_emails() == ["ada@example.com", "zoe@example.com"]

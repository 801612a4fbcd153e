"""The consumer example (``examples/feed_consumer.py``) keeps an exact copy (issue 14, G12).

About 1,000 operations (creates in several organizations, name and e-mail changes,
suspensions and reactivations, memberships added, changed and removed, deprovisions, a few
organization deletions; some refused) run through the Supabase emulator with faults (5xx,
timeouts, ghost creates and ghost updates). An operation left pending is asked again with its
Idempotency-Key, and the worker settles the rest. Meanwhile the consumer, in a thread of its own
like a separate program, follows ``GET /api/events`` over HTTP and applies the events to its
SQLite tables. Then five identities are deleted behind accord's back and ``reconcile --fix``
deprovisions their rows (``user.repaired``, ``membership.removed``). After settle the copy's
``users`` and ``memberships`` equal what accord's API lists, exactly, and G1 to G11 hold; the
whole feed read again (a lost cursor), or applied in a shuffled order, changes nothing.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from accord.adapters.idp.supabase import SupabaseProvider
from accord.bootstrap import Accord, build
from accord.config import Settings
from accord.domain import errors
from accord.domain.drift import OrphanRowPolicy
from accord.domain.model import Role
from accord.emulators.faults import FaultConfig
from accord.emulators.supabase import DEFAULT_SERVICE_ROLE_KEY, create_app
from accord.entrypoints.api import create_app as create_api
from accord.services import members, tokens
from accord.services.deprovisioning import deprovision_user
from accord.services.offboarding import delete_organization
from accord.services.organizations import NewOrganization, create_organization
from accord.services.profile import ProfileChange, update_user
from accord.services.provisioning import NewUser, create_user
from accord.services.reconcile import ReconcileOptions, reconcile
from accord.services.suspension import reactivate_user, suspend_user
from accord.testing.servers import serve_in_thread
from tests.engine.conftest import PLATFORM
from tests.engine.email_faults import settle
from tests.examples import load
from tests.guarantees import assert_guarantees
from tests.mailbox import make_everything_due
from tests.patience import HANG, PATIENCE

OPERATIONS = int(os.environ.get("ACCORD_FEED_CONSUMER_OPERATIONS", "1000"))
CONCURRENCY = 12
ORGANIZATIONS = 5
ORG_DELETIONS = 3
FAULTS = {
    "error_rate": 0.15,
    "ghost_rate": 0.05,
    "write_ghost_rate": 0.05,
    "timeout_rate": 0.005,
    "hang_seconds": HANG,
}
IDP_TIMEOUT = 1.0  # shorter than the emulator's hang: a timeout is a fault of its own
UNFINISHED = (errors.OperationPending, errors.OperationInProgress, errors.StorageUnavailable)


feed_consumer = load("feed_consumer")


@asynccontextmanager
async def accord_and_api(settings: Settings) -> AsyncIterator[tuple[Accord, Any, str, str]]:
    """accord over a faulty Supabase emulator; the emulator, its URL and accord's API URL (a
    server in a thread of its own, with its own Accord on the same database, no worker)."""
    emulator = create_app(faults=FaultConfig(seed=14))
    with serve_in_thread(emulator) as idp_url:
        provider = SupabaseProvider(idp_url, DEFAULT_SERVICE_ROLE_KEY, timeout_seconds=IDP_TIMEOUT)
        accord = build(settings.model_copy(update={"database_pool_size": 16}), idp=provider)
        api = create_api(settings=settings.model_copy(update={"serve_worker": False}))
        try:
            with serve_in_thread(api, lifespan="on") as api_url:
                yield accord, emulator, idp_url, api_url
        finally:
            await accord.aclose()


class Consumer:
    """The example, run the way it runs on its own: polling in a thread, its own connection."""

    def __init__(self, api_url: str, token: str, path: Path) -> None:
        self.url, self.token, self.path = api_url, token, path
        self.stop = threading.Event()
        self.syncs_with_events = 0
        self.events_read = 0
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=PATIENCE)

    def _run(self) -> None:
        db = feed_consumer.open_db(str(self.path))
        try:
            with self.client() as client:
                while not self.stop.is_set():
                    self._sync(client, db)
                    self.stop.wait(0.5)  # the poll interval, not a synchronisation
                self._sync(client, db)  # the operations are over: read to the end
        except BaseException as failure:
            self.failure = failure
        finally:
            db.close()

    def _sync(self, client: httpx.Client, db: sqlite3.Connection) -> None:
        read = feed_consumer.sync(client, db, page_size=50)  # small pages: more cursors
        self.events_read += read
        self.syncs_with_events += read > 0

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10 * PATIENCE)
        assert not self.thread.is_alive(), "the consumer did not finish"
        if self.failure is not None:
            raise self.failure


@dataclass
class World:
    """What the operations pick from, and what is still to be asked again."""

    orgs: list[UUID]
    users: list[str] = field(default_factory=list)
    emails: int = 0
    keys: int = 0
    in_flight: list[tuple[str, Callable[[], Awaitable[Any]]]] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    storage_failures: list[str] = field(default_factory=list)
    last_unfinished: str = ""

    def key(self) -> str:
        self.keys += 1
        return f"consumer-{self.keys}"

    def email(self) -> str:
        self.emails += 1
        return f"person{self.emails}@feed.example"


def _operation(accord: Accord, world: World, rng: random.Random) -> tuple[str, Callable]:
    """A random operation (its name, and how to ask it with its key)."""
    roll = rng.random() if world.users else 0.0
    key = world.key()
    org = rng.choice(world.orgs)
    if roll < 0.3:
        existing = rng.random() < 0.05 and world.users  # sometimes a taken address: refused
        email = f"person{rng.randint(1, world.emails)}@feed.example" if existing else world.email()
        request = NewUser(email, f"Person {world.emails}", org)
        return "create", lambda: create_user(accord, request, caller=PLATFORM, idempotency_key=key)
    user = rng.choice(world.users)
    if roll < 0.42:
        change = ProfileChange(full_name=f"Renamed {key}")
        return "rename", lambda: update_user(
            accord, user, change, caller=PLATFORM, idempotency_key=key
        )
    if roll < 0.52:
        taken = rng.random() < 0.1  # someone else's address: refused
        email = f"person{rng.randint(1, world.emails)}@feed.example" if taken else world.email()
        change = ProfileChange(email=email)
        return "email", lambda: update_user(
            accord, user, change, caller=PLATFORM, idempotency_key=key
        )
    if roll < 0.62:
        act = suspend_user if rng.random() < 0.5 else reactivate_user
        return act.__name__, lambda: act(accord, user, caller=PLATFORM, idempotency_key=key)
    if roll < 0.82:
        role = rng.choice([Role.ORG_USER, Role.ORG_ADMIN])
        return "put_member", lambda: members.put_member(
            accord, org, user, role=role, caller=PLATFORM
        )
    if roll < 0.92:
        return "remove_member", lambda: members.remove_member(accord, org, user, caller=PLATFORM)
    return "deprovision", lambda: deprovision_user(
        accord, user, caller=PLATFORM, idempotency_key=key
    )


async def _ask(world: World, name: str, call: Callable[[], Awaitable[Any]]) -> bool:
    """Run an operation; True when it finished (done or refused), False when still open."""
    try:
        result = await call()
    except UNFINISHED as unfinished:
        world.answers[f"{name}:unfinished"] += 1
        world.last_unfinished = f"{name}: {unfinished.code}: {unfinished.message}"
        if isinstance(unfinished, errors.StorageUnavailable):  # a 503: asked again, same key
            world.storage_failures.append(f"{name}: {unfinished.__cause__!r}")
        return False
    except errors.AccordError as refusal:
        world.answers[f"{name}:{refusal.code}"] += 1
        return True
    world.answers[f"{name}:done"] += 1
    if name == "create":
        world.users.append(result["user"]["id"])
    return True


async def _retry_some(accord: Accord, world: World, rng: random.Random) -> None:
    """Clients ask again with their keys (after the leases of the "lost" calls ran out)."""
    if not world.in_flight:
        return
    await make_everything_due(accord)
    again = [f for f in world.in_flight if rng.random() < 0.5]
    done = await asyncio.gather(*(_ask(world, n, c) for n, c in again))
    for flight, finished in zip(again, done, strict=True):
        if finished:
            world.in_flight.remove(flight)


async def _finish(accord: Accord, world: World) -> None:
    """The worker settles what is open; each client asks again until it has its answer (an
    operation a refused claim never started starts now)."""
    for _ in range(5):
        await settle(accord)
        asked = [(flight, await _ask(world, *flight)) for flight in world.in_flight]
        world.in_flight = [flight for flight, finished in asked if not finished]
        if not world.in_flight:
            return
    raise AssertionError(
        f"still open after settle: {world.last_unfinished} {world.storage_failures[-1:]}"
    )


async def _run_operations(accord: Accord, world: World, rng: random.Random) -> None:
    deletions_at = set(rng.sample(range(OPERATIONS // 4, OPERATIONS), ORG_DELETIONS))
    for start in range(0, OPERATIONS, CONCURRENCY):
        batch = [_operation(accord, world, rng) for _ in range(CONCURRENCY)]
        if deletions_at & set(range(start, start + CONCURRENCY)) and len(world.orgs) > 2:
            org, key = world.orgs.pop(rng.randrange(len(world.orgs))), world.key()
            batch.append(
                (
                    "delete_org",
                    lambda o=org, k=key: delete_organization(
                        accord, o, caller=PLATFORM, idempotency_key=k
                    ),
                )
            )
        done = await asyncio.gather(*(_ask(world, n, c) for n, c in batch))
        world.in_flight += [op for op, finished in zip(batch, done, strict=True) if not finished]
        await _retry_some(accord, world, rng)


async def _accord_users(client: httpx.AsyncClient) -> tuple[dict[str, tuple], set[tuple]]:
    """Users and memberships as accord's API lists them."""
    users: dict[str, tuple] = {}
    memberships: set[tuple] = set()
    cursor = None
    while True:
        params = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        answer = await client.get("/api/admin/users", params=params)
        answer.raise_for_status()
        page = answer.json()
        for user in page["items"]:
            users[user["id"]] = (user["email"], user["full_name"], user["status"])
            memberships |= {
                (user["id"], m["organization_id"], m["role"]) for m in user["organizations"]
            }
        cursor = page["next_cursor"]
        if cursor is None:
            return users, memberships


def _copy(db: sqlite3.Connection) -> tuple[dict[str, tuple], set[tuple]]:
    """Users and memberships as a consumer's copy holds them."""
    users = {r[0]: tuple(r[1:]) for r in db.execute("SELECT * FROM users")}
    memberships = set(db.execute("SELECT user_id, organization_id, role FROM memberships"))
    return users, memberships


def _whole_feed(client: httpx.Client) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500}
    while True:
        page = client.get("/api/events", params=params).raise_for_status().json()
        events += page["items"]
        params["after"] = page["next_cursor"]
        if not page["has_more"]:
            return events


async def _drift(accord: Accord, emulator: Any, users: dict[str, tuple], n: int) -> Any:
    """Someone deletes ``n`` live users in the vendor's console; reconcile deprovisions their
    rows (``user.repaired``, and their memberships go)."""
    live = {email for email, _, status in users.values() if status in ("active", "pending")}
    store = emulator.state.admin.store.users
    for remote_id in [i for i, u in store.items() if u["email"] in live][:n]:
        del store[remote_id]
    options = ReconcileOptions(fix=True, orphan_rows=OrphanRowPolicy.DEPROVISION, grace_seconds=0)
    return await reconcile(accord, options)


async def test_the_consumer_example_holds_exactly_accords_users_and_memberships(
    settings: Settings, tmp_path: Path
) -> None:
    rng = random.Random(14)
    started = time.monotonic()
    async with accord_and_api(settings) as (accord, emulator, idp_url, api_url):
        token, _ = await tokens.create_token(accord, name="feed consumer")
        orgs = []
        for k in range(ORGANIZATIONS):
            made = await create_organization(
                accord, NewOrganization(name=f"Feed {k}", max_users=OPERATIONS), caller=PLATFORM
            )
            orgs.append(UUID(made["id"]))
        world = World(orgs)
        consumer = Consumer(api_url, token, tmp_path / "copy.sqlite")
        headers = {"Authorization": f"Bearer {token}"}
        api = httpx.AsyncClient(base_url=api_url, headers=headers, timeout=PATIENCE)
        consumer.thread.start()
        try:
            async with httpx.AsyncClient(base_url=idp_url) as control:
                (await control.put("/__faults", json={**FAULTS, "seed": 14})).raise_for_status()
                await _run_operations(accord, world, rng)
                stats = (await control.get("/__faults")).json()["stats"]
                (await control.post("/__faults/reset")).raise_for_status()
            operations_done = time.monotonic()
            await _finish(accord, world)
            repaired = await _drift(accord, emulator, (await _accord_users(api))[0], n=5)
            await _finish(accord, world)
        finally:
            consumer.finish()
        users, memberships = await _accord_users(api)
        await api.aclose()
        with sqlite3.connect(consumer.path) as db:
            held = _copy(db)
        assert held[0] == users, "the copy's users differ from accord's"
        assert held[1] == memberships, "the copy's memberships differ from accord's"
        await assert_guarantees(accord)

        with consumer.client() as client:  # a consumer that crashed before storing its cursor
            events = _whole_feed(client)
            with sqlite3.connect(consumer.path, isolation_level=None) as db:
                db.execute("DELETE FROM feed_cursor")
                assert feed_consumer.sync(client, db) == len(events)
                assert _copy(db) == held, "the whole feed again changed the copy"
        shuffled = feed_consumer.open_db(":memory:")  # every event once, in any order
        for event in rng.sample(events, len(events)):
            feed_consumer.apply(shuffled, event)
        assert _copy(shuffled) == held, "an older event overwrote a newer one"

    answers = world.answers
    print(
        f"feed consumer: {len(users)} users, {len(memberships)} memberships, {len(events)} "
        f"events; the consumer read {consumer.events_read} in {consumer.syncs_with_events} "
        f"reads; operations {operations_done - started:.1f} s, in all "
        f"{time.monotonic() - started:.1f} s; answers {dict(sorted(answers.items()))}; "
        f"emulator {stats}; repaired {repaired.fixed}; storage {world.storage_failures}"
    )
    assert consumer.syncs_with_events > 5, "the consumer read only at the end"
    assert sum(answers.values()) >= OPERATIONS
    assert sum(v for k, v in answers.items() if k.endswith(":unfinished")) > 0, "no fault hit"
    assert sum(v for k, v in answers.items() if not k.endswith((":done", ":unfinished"))) > 0
    assert any(s == "disabled" for _, _, s in users.values()), "no deprovision happened"
    assert {e["type"] for e in events} >= {"user.repaired", "membership.removed"}

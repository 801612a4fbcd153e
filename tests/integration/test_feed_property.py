"""The feed's property (G12), on real concurrent PostgreSQL connections: 32 writers commit
creates, profile changes, membership changes and deletions (some of them failing) while a
reader tails the feed with its cursor. Afterwards the reader has every event of the table
exactly once, the sequence has no hole, each subject's events came in the order of its
versions (1, 2, 3, … with none skipped), a subject's last event carries what the API shows for
it now (and the membership events, applied by version, give the memberships table), and no
failed operation wrote an event."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from uuid import UUID

import pytest
from sqlalchemy import text

from accord.bootstrap import Accord, build
from accord.config import Settings
from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import Role
from accord.services import members
from accord.services.deprovisioning import deprovision_user
from accord.services.events import read_feed
from accord.services.organizations import NewOrganization, create_organization
from accord.services.profile import ProfileChange, update_user
from accord.services.provisioning import NewUser, create_user
from accord.services.reads import get_user
from accord.testing import FakeIdentityProvider, Fault

PLATFORM = Caller.platform("token:platform", "admin@platform.test")
WRITERS = 32
OPERATIONS_PER_WRITER = 6
REJECTED_CREATES = 6  # the IdP refuses these: compensated, they must leave no event


@pytest.fixture
async def busy(settings: Settings, fake_idp: FakeIdentityProvider) -> AsyncIterator[Accord]:
    """accord with enough connections for every writer and the reader at once."""
    instance = build(settings.model_copy(update={"database_pool_size": 20}), idp=fake_idp)
    try:
        yield instance
    finally:
        await instance.aclose()


class World:
    """What the writers share: the organizations and the users made so far."""

    def __init__(self, orgs: list[UUID]) -> None:
        self.orgs = orgs
        self.users: list[str] = []
        self.failed: list[str] = []


async def write(accord: Accord, world: World, writer: int, rng: random.Random) -> None:
    for step in range(OPERATIONS_PER_WRITER):
        choice = rng.random() if world.users else 0.0
        try:
            if choice < 0.35:
                email = f"w{writer}-{step}@example.com"
                request = NewUser(email, f"Writer {writer}", rng.choice(world.orgs))
                made = await create_user(accord, request, caller=PLATFORM)
                world.users.append(made["user"]["id"])
            elif choice < 0.6:
                name = f"Renamed {writer}.{step}"
                change = ProfileChange(full_name=name)
                await update_user(accord, rng.choice(world.users), change, caller=PLATFORM)
            elif choice < 0.85:
                role = rng.choice([Role.ORG_USER, Role.ORG_ADMIN])
                org, user = rng.choice(world.orgs), rng.choice(world.users)
                await members.put_member(accord, org, user, role=role, caller=PLATFORM)
            else:
                await deprovision_user(accord, rng.choice(world.users), caller=PLATFORM)
        except errors.RemoteRejected:
            world.failed.append(f"w{writer}-{step}@example.com")
        except (errors.UserDeprovisioned, errors.UserNotFound, errors.LastAdmin):
            pass  # lost a race to a deletion, or the last admin stays: refused, no change
        except errors.OperationInProgress:
            pass  # another writer's operation holds the user: refused, no change


async def tail(accord: Accord, done: asyncio.Event) -> list[dict]:
    """Follow the cursor until the writers are done and a last page came back empty."""
    seen: list[dict] = []
    cursor = None
    while True:
        finished = done.is_set()
        page = await read_feed(accord, caller=PLATFORM, after=cursor, limit=50)
        seen += page["items"]
        cursor = page["next_cursor"]
        if finished and not page["has_more"] and not page["items"]:
            return seen
        await asyncio.sleep(0)  # let the writers on


async def test_concurrent_writers_and_a_tailing_reader(
    busy: Accord, fake_idp: FakeIdentityProvider
) -> None:
    accord = busy
    orgs = []
    for name in ("Acme", "Globex", "Initech"):
        made = await create_organization(
            accord, NewOrganization(name=name, max_users=1000), caller=PLATFORM
        )
        orgs.append(UUID(made["id"]))
    world = World(orgs)
    fake_idp.script("create", Fault.REJECTED, times=REJECTED_CREATES)
    done = asyncio.Event()
    reader = asyncio.create_task(tail(accord, done))
    writers = [write(accord, world, w, random.Random(w)) for w in range(WRITERS)]
    await asyncio.gather(*writers)
    done.set()
    seen = await reader

    async with accord.db.transaction() as conn:
        stored = {str(r.id) for r in await conn.execute(text("SELECT id FROM change_events"))}
        failed_ops = {
            str(r.id)
            for r in await conn.execute(text("SELECT id FROM operations WHERE state = 'failed'"))
        }
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)), "an event was read twice"
    assert set(ids) == stored, "the reader missed events, or saw some the table lacks"
    assert [e["sequence"] for e in seen] == list(range(1, len(seen) + 1))
    by_subject: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for event in seen:
        by_subject[(event["subject"]["type"], event["subject"]["id"])].append(event)
    for subject, events in by_subject.items():
        versions = [e["version"] for e in events]
        assert versions == list(range(1, len(events) + 1)), (subject, versions)
    assert len(world.failed) == REJECTED_CREATES and len(failed_ops) >= REJECTED_CREATES
    assert not [e for e in seen if e["operation_id"] in failed_ops]
    emails = {e["data"].get("email") for e in seen if e["data"]}
    assert not emails & set(world.failed)
    for user_id in world.users:  # a user's last event shows it as it is now; its places in
        # organizations are subjects of their own (membership events)
        last = dict(by_subject[("user", user_id)][-1]["data"])
        now = await get_user(accord, user_id, caller=PLATFORM)
        assert {**last, "organizations": None} == {**now, "organizations": None}
    applied = {  # what a consumer that applies membership events by version now holds
        subject_id: events[-1]["data"]
        for (kind, subject_id), events in by_subject.items()
        if kind == "membership" and events[-1]["data"] is not None
    }
    async with accord.db.transaction() as conn:
        rows = await conn.execute(text("SELECT user_id, organization_id, role FROM memberships"))
        actual = {f"{r.user_id}:{r.organization_id}": r.role for r in rows}
    assert {k: v["role"] for k, v in applied.items()} == actual
    assert len(world.users) >= WRITERS  # the run did real work

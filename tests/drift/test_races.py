"""reconcile racing live provisioning: it never deletes, relinks or removes what a running
operation owns, and its own deletions hold the e-mail against a claim that comes meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from accord.bootstrap import Accord
from accord.domain.ports import IdentityProvider, NewRemoteUser
from accord.services.provisioning import NewUser, create_user
from accord.services.reconcile import ReconcileOptions, reconcile
from tests.drift import scenes
from tests.drift.conftest import OPENERS, Planted, sql
from tests.engine.conftest import PLATFORM, new_org
from tests.guarantees import assert_guarantees

AGGRESSIVE = ReconcileOptions(
    fix=True, orphan_rows="deprovision", foreign_idp_users="adopt", grace_seconds=0
)


class Gated:
    """A provider that stops chosen calls at a gate until ``open()``: operations caught in the
    middle of their IdP phase, for as long as the test needs."""

    def __init__(self, inner: IdentityProvider, holds: dict[str, set[str]]) -> None:
        self._inner = inner
        self.name = inner.name
        self._holds = holds  # method -> the e-mails (or remote ids) whose call waits
        self._gate = asyncio.Event()
        self._waiting = 0
        self.expected = sum(len(keys) for keys in holds.values())
        self.all_waiting = asyncio.Event()

    def open(self) -> None:
        self._gate.set()

    async def _wait(self, method: str, key: str) -> None:
        if key not in self._holds.get(method, set()):
            return
        self._holds[method].discard(key)  # once: a retry of the same call goes through
        self._waiting += 1
        if self._waiting == self.expected:
            self.all_waiting.set()
        await self._gate.wait()

    async def find_by_email(self, email: str) -> Any:
        await self._wait("find_by_email", email)
        return await self._inner.find_by_email(email)

    async def create(self, user: NewRemoteUser) -> Any:
        created = await self._inner.create(user)
        await self._wait("create", user.email)  # the IdP user exists; the answer is late
        return created

    async def delete(self, remote_id: str) -> None:
        await self._wait("delete", remote_id)
        await self._inner.delete(remote_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def new_user(email: str, org: Any) -> NewUser:
    # The ghost below carries an id accord never claimed, so only an explicit adoption takes it.
    return NewUser(email, email.split("@")[0], org, adopt_existing=True)


@pytest.fixture(params=["fake", "local"])
async def racing(request: pytest.FixtureRequest, settings) -> Any:
    async with OPENERS[request.param](settings) as instance:
        yield instance


async def test_reconcile_never_touches_what_running_operations_own(racing: Planted) -> None:
    app = racing.app
    org = await new_org(app, max_users=20)
    ghost = await scenes.ghost_idp_user(app, "c@example.com")  # about to be adopted
    await racing.plant_foreign("foreign@example.com")  # drift reconcile does repair meanwhile
    before_lookup = {"a1@example.com", "a2@example.com", "c@example.com"}
    after_create = {"b1@example.com", "b2@example.com"}
    real = app.idp
    gated = Gated(real, {"find_by_email": set(before_lookup), "create": set(after_create)})
    app.idp = gated  # type: ignore[assignment]
    running = [
        asyncio.create_task(create_user(app, new_user(e, org), caller=PLATFORM))
        for e in sorted(before_lookup | after_create)
    ]
    await gated.all_waiting.wait()

    report = await reconcile(app, AGGRESSIVE)

    touched = {f.email for findings in report.findings.values() for f in findings}
    assert touched == {"foreign@example.com"}, "nothing a running operation owns is touched"
    assert await real.get(ghost) is not None
    gated.open()
    results = {r["user"]["email"]: r for r in await asyncio.gather(*running)}
    assert results["c@example.com"]["reused_identity"] is True  # adopted the identity it found
    app.idp = real
    assert (await reconcile(app, AGGRESSIVE)).remaining == 0
    await assert_guarantees(app)


async def test_reconcile_runs_while_users_are_created_and_loses_none(racing: Planted) -> None:
    app = racing.app
    org = await new_org(app, max_users=100)
    for n in range(3):
        await scenes.ghost_idp_user(app, f"ghost{n}@example.com")
        await scenes.unlinked_match(app, f"unlinked{n}@example.com", org)
    # The local IdP hashes every credential with argon2id: fewer users keep the test quick.
    live = [f"live{n}@example.com" for n in range(30 if app.idp.name == "fake" else 10)]
    gate = asyncio.Semaphore(5)

    async def create(email: str) -> dict[str, Any]:
        async with gate:
            return await create_user(app, new_user(email, org), caller=PLATFORM)

    async def reconcile_repeatedly() -> None:
        for _ in range(3):
            await reconcile(app, AGGRESSIVE)

    creations = asyncio.gather(*(create(e) for e in live))
    await asyncio.gather(creations, reconcile_repeatedly())

    for email in live:
        remote = await app.idp.find_by_email(email)
        assert remote is not None, email
        linked = "SELECT l.remote_id FROM idp_links l JOIN users u ON u.id = l.user_id "
        assert await sql(app, linked + "WHERE u.email = :e", e=email) == remote.remote_id
    repaired = await sql(
        app,
        "SELECT count(*) FROM audit_events WHERE action LIKE 'reconcile.%' "
        "AND subject_email LIKE 'live%'",
    )
    assert repaired == 0
    await reconcile(app, AGGRESSIVE)
    await assert_guarantees(app)


async def waiting_on_a_lock(app: Accord) -> None:
    """Wait until some session of this database waits for a row lock (a blocked claim)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(1000):
        async with app.db.transaction() as conn:
            if (await conn.execute(query)).scalar_one():
                return
        await asyncio.sleep(0.01)  # polling a condition, not guessing a duration
    raise AssertionError("the claim never blocked")


async def test_a_claim_during_a_deletion_waits_and_then_creates_afresh(fake_app: Planted) -> None:
    """Without the e-mail hold, the claim would adopt the IdP user that reconcile is deleting,
    and finish linked to nothing (G2)."""
    app = fake_app.app
    org = await new_org(app)
    ghost = await scenes.ghost_idp_user(app, "late@example.com")
    real = app.idp
    gated = Gated(real, {"delete": {ghost}})
    app.idp = gated  # type: ignore[assignment]

    repair = asyncio.create_task(reconcile(app, ReconcileOptions(fix=True)))
    await gated.all_waiting.wait()  # reconcile holds the e-mail and is deleting
    claim = asyncio.create_task(
        create_user(app, new_user("late@example.com", org), caller=PLATFORM)
    )
    await waiting_on_a_lock(app)
    gated.open()
    report, created = await asyncio.gather(repair, claim)

    assert [f.done for f in report.findings["orphan_idp_users"]] == [True]
    assert created["reused_identity"] is False  # a new identity, not the deleted one
    remote = await real.find_by_email("late@example.com")
    assert remote is not None and remote.remote_id != ghost
    app.idp = real
    await assert_guarantees(app)

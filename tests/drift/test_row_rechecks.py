"""The re-checks of the row repairs (link, deprovision, recreate), each run at its window: the
scan has found the drift, then the world changes before the repair. The repair leaves the
finding with its reason and changes nothing; a transient IdP failure is retried, a lasting one
leaves the finding for the next run."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.drift import DriftClass, Finding
from accord.services import repairs
from accord.services.reconcile import ReconcileOptions, reconcile
from accord.testing import Fault
from tests.drift import scenes
from tests.drift.conftest import Planted, sql
from tests.drift.test_repair_windows import link_to_a_new_identity, status
from tests.engine.conftest import new_org
from tests.guarantees import assert_guarantees

DRY_RECREATE = ReconcileOptions(orphan_rows="recreate", grace_seconds=0)
DRY_DEPROVISION = ReconcileOptions(orphan_rows="deprovision", grace_seconds=0)
LINKED = "SELECT remote_id FROM idp_links WHERE user_id = :u"


async def scanned(
    app: Accord, drift: DriftClass, email: str, options: ReconcileOptions | None = None
) -> Finding:
    """The finding of class ``drift`` for ``email`` of a dry run: the scan, before any repair."""
    report = await reconcile(app, options or ReconcileOptions(grace_seconds=0))
    (finding,) = [f for f in report.findings[drift] if f.email == email]
    return finding


class FailingReads:
    """A provider whose next ``get`` calls fail as if the IdP were down (retry at once)."""

    def __init__(self, inner: Any, times: int) -> None:
        self._inner, self.name, self.failures = inner, inner.name, times

    async def get(self, remote_id: str) -> Any:
        if self.failures:
            self.failures -= 1
            raise errors.ProviderUnavailable("flaky: get is down", retry_after=0.001)
        return await self._inner.get(remote_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_a_link_leaves_a_row_whose_idp_user_changed_since_the_scan(
    fake_app: Planted,
) -> None:
    app = fake_app.app
    row = await scenes.unlinked_match(app, "ada@example.com", await new_org(app))
    finding = await scanned(app, DriftClass.UNLINKED_MATCHES, "ada@example.com")
    await app.idp.update(row["remote_id"], email="someone.else@example.com")  # after the scan
    await repairs.apply(app, finding, "test")
    assert (finding.done, finding.note) == (False, "left: the IdP user changed since the scan")
    assert await sql(app, LINKED, u=UUID(row["id"])) is None  # not linked to someone else


async def test_a_link_leaves_a_row_linked_meanwhile(fake_app: Planted) -> None:
    app = fake_app.app
    row = await scenes.unlinked_match(app, "ada@example.com", await new_org(app))
    finding = await scanned(app, DriftClass.UNLINKED_MATCHES, "ada@example.com")
    newer = await link_to_a_new_identity(app, row["id"], "ada.new@example.com")
    await repairs.apply(app, finding, "test")
    assert (finding.done, finding.note) == (False, "left: the row was linked meanwhile")
    assert await sql(app, LINKED, u=UUID(row["id"])) == newer  # the newer link stands


async def test_a_link_leaves_an_idp_user_another_row_took_meanwhile(fake_app: Planted) -> None:
    app = fake_app.app
    org = await new_org(app)
    ada = await scenes.unlinked_match(app, "ada@example.com", org)
    bob = await scenes.user(app, "bob@example.com", org)
    finding = await scanned(app, DriftClass.UNLINKED_MATCHES, "ada@example.com")
    relink = "UPDATE idp_links SET remote_id = :r WHERE user_id = :u"
    await sql(app, relink, r=ada["remote_id"], u=UUID(bob["id"]))
    await repairs.apply(app, finding, "test")
    assert (finding.done, finding.note) == (False, "left: the IdP user was linked meanwhile")
    assert await sql(app, LINKED, u=UUID(ada["id"])) is None  # one IdP user, one row (G2)
    assert await sql(app, LINKED, u=UUID(bob["id"])) == ada["remote_id"]


async def test_a_repair_leaves_a_row_that_changed_since_the_scan(fake_app: Planted) -> None:
    app = fake_app.app
    row = await scenes.orphan_row(app, "ada@example.com", await new_org(app))
    finding = await scanned(app, DriftClass.ORPHAN_ROWS, "ada@example.com", DRY_DEPROVISION)
    moved = "UPDATE users SET email = 'ada.b@example.com' WHERE id = :u"  # a change of e-mail
    await sql(app, moved, u=UUID(row["id"]))
    await repairs.apply(app, finding, "test")
    assert (finding.done, finding.note) == (False, "left: the row changed since the scan")
    assert await status(app, row["id"]) == "pending"  # access not cut
    members = "SELECT count(*) FROM memberships WHERE user_id = :u"
    assert await sql(app, members, u=UUID(row["id"])) == 1


async def test_a_transient_idp_failure_while_reading_is_retried(fake_app: Planted) -> None:
    app = fake_app.app
    row = await scenes.unlinked_match(app, "ada@example.com", await new_org(app))
    finding = await scanned(app, DriftClass.UNLINKED_MATCHES, "ada@example.com")
    real = app.idp
    app.idp = FailingReads(real, times=repairs.READ_ATTEMPTS - 1)  # type: ignore[assignment]
    await repairs.apply(app, finding, "test")
    app.idp = real
    assert finding.done is True
    assert await sql(app, LINKED, u=UUID(row["id"])) == row["remote_id"]
    await assert_guarantees(app)


async def test_an_idp_down_for_every_read_leaves_the_finding(fake_app: Planted) -> None:
    app = fake_app.app
    row = await scenes.unlinked_match(app, "ada@example.com", await new_org(app))
    finding = await scanned(app, DriftClass.UNLINKED_MATCHES, "ada@example.com")
    real = app.idp
    app.idp = FailingReads(real, times=repairs.READ_ATTEMPTS)  # type: ignore[assignment]
    await repairs.apply(app, finding, "test")
    app.idp = real
    assert (finding.done, finding.note) == (False, "left: idp_unavailable: flaky: get is down")
    assert await sql(app, LINKED, u=UUID(row["id"])) is None  # left for the next run


async def test_a_recreate_never_links_a_row_to_an_idp_user_someone_else_made_meanwhile(
    fake_app: Planted,
) -> None:
    app = fake_app.app
    row = await scenes.orphan_row(app, "ada@example.com", await new_org(app))
    finding = await scanned(app, DriftClass.ORPHAN_ROWS, "ada@example.com", DRY_RECREATE)
    await fake_app.plant_foreign("ada@example.com")  # another system made it after the scan
    await repairs.apply(app, finding, "test")
    assert (finding.done, finding.note) == (False, "left: another IdP user has this e-mail now")
    stale = row["remote_id"]  # its link to the vanished IdP user, as before
    assert await sql(app, LINKED, u=UUID(row["id"])) == stale  # no takeover of a foreign user
    foreign = await app.idp.find_by_email("ada@example.com")
    assert foreign is not None and foreign.accord_user_id is None  # and it is left alone


async def test_a_recreate_whose_answer_was_lost_links_the_idp_user_it_made(
    fake_app: Planted,
) -> None:
    app = fake_app.app
    row = await scenes.orphan_row(app, "ada@example.com", await new_org(app))
    finding = await scanned(app, DriftClass.ORPHAN_ROWS, "ada@example.com", DRY_RECREATE)
    app.idp.script("create", Fault.GHOST)  # type: ignore[attr-defined]  # made; answer lost
    await repairs.apply(app, finding, "test")
    assert finding.done is True
    made = [u for u in app.idp.users.values() if u.email == "ada@example.com"]  # type: ignore[attr-defined]
    assert [u.accord_user_id for u in made] == [row["id"]]  # one IdP user, not two
    assert await sql(app, LINKED, u=UUID(row["id"])) == made[0].remote_id
    mail = "SELECT count(*) FROM outbox WHERE dedupe_key LIKE 'reconcile-recreate:%'"
    assert await sql(app, mail) == 1  # the set-password mail goes out
    await assert_guarantees(app)


async def test_a_stuck_operation_that_still_cannot_reach_the_idp_is_left_open(
    fake_app: Planted,
) -> None:
    app = fake_app.app
    await scenes.stuck_operation(app, "idle@example.com", await new_org(app), past_deadline=False)
    app.idp.script("create", Fault.UNAVAILABLE)  # type: ignore[attr-defined]  # still down
    report = await reconcile(app, ReconcileOptions(fix=True, grace_seconds=0))
    (finding,) = report.findings[DriftClass.STUCK_OPERATIONS]
    assert finding.done is False
    assert finding.note == "left: running elsewhere, or waiting for the identity provider"
    state = "SELECT state FROM operations WHERE request->>'email' = 'idle@example.com'"
    assert await sql(app, state) == "open"  # its runner tries again later: not compensated
    assert report.remaining == 1

"""The re-checks of the IdP-user repairs (delete a ghost, adopt a foreign user), each run at its
window: after the scan, the IdP user vanishes, a row takes its e-mail, or another row links it.
The repair leaves the IdP user and the rows as they are, with the reason; an IdP user already
gone counts as repaired."""

from __future__ import annotations

from uuid import UUID

import pytest

from accord.domain.drift import DriftClass
from accord.services import repairs
from accord.services.reconcile import ReconcileOptions, reconcile
from tests.drift import scenes
from tests.drift.conftest import Planted, sql
from tests.drift.test_row_rechecks import scanned
from tests.engine.conftest import new_org

ORPHANS = DriftClass.ORPHAN_IDP_USERS
DRY_ADOPT = ReconcileOptions(foreign_idp_users="adopt", grace_seconds=0)
ADOPT = ReconcileOptions(fix=True, foreign_idp_users="adopt", grace_seconds=0)
ROWS_OF = "SELECT count(*) FROM users WHERE email = :e"


async def foreign_id(planted: Planted, email: str) -> str:
    """Plant a foreign IdP user; its remote id."""
    await planted.plant_foreign(email)
    remote = await planted.app.idp.find_by_email(email)
    assert remote is not None
    return remote.remote_id


async def take_link(planted: Planted, remote_id: str) -> None:
    """What a person does meanwhile: link another user's row to ``remote_id``."""
    app = planted.app
    other = await scenes.user(app, "other@example.com", await new_org(app, "Other"))
    relink = "UPDATE idp_links SET remote_id = :r WHERE user_id = :u"
    await sql(app, relink, r=remote_id, u=UUID(other["id"]))


async def test_a_ghost_gone_before_its_deletion_counts_as_repaired(fake_app: Planted) -> None:
    app = fake_app.app
    ghost = await scenes.ghost_idp_user(app, "ghost@example.com")
    finding = await scanned(app, ORPHANS, "ghost@example.com")
    await app.idp.delete(ghost)  # someone deleted it in the IdP after the scan
    await repairs.apply(app, finding, "test")
    assert (finding.done, finding.note) == (True, "already gone")
    assert await sql(app, "SELECT count(*) FROM users") == 0  # no placeholder left behind


async def test_a_ghost_whose_email_a_row_took_meanwhile_is_kept(fake_app: Planted) -> None:
    app = fake_app.app
    ghost = await scenes.ghost_idp_user(app, "late@example.com")
    finding = await scanned(app, ORPHANS, "late@example.com")
    await scenes.never_finished_row(app, "late@example.com")  # a claim may adopt it next
    await repairs.apply(app, finding, "test")
    assert (finding.done, finding.note) == (False, "left: a user with this e-mail exists now")
    assert await app.idp.get(ghost) is not None


async def test_a_ghost_another_row_linked_meanwhile_is_kept(fake_app: Planted) -> None:
    app = fake_app.app
    ghost = await scenes.ghost_idp_user(app, "ghost@example.com")
    finding = await scanned(app, ORPHANS, "ghost@example.com")
    await take_link(fake_app, ghost)
    await repairs.apply(app, finding, "test")
    assert (finding.done, finding.note) == (False, "left: the IdP user was linked meanwhile")
    assert await app.idp.get(ghost) is not None  # deleting it would strand its row (G2)
    assert await sql(app, ROWS_OF, e="ghost@example.com") == 0  # the hold is released


@pytest.mark.parametrize(
    "email",
    ["no-at-sign", "stra\u00dfe@example.com"],  # invalid for accord; folds to "strasse@"
)
async def test_a_ghost_whose_email_no_claim_can_spell_is_deleted(
    fake_app: Planted, email: str
) -> None:
    app = fake_app.app
    ghost = await scenes.ghost_idp_user(app, email)
    report = await reconcile(app, ReconcileOptions(fix=True))
    assert [(f.email, f.done) for f in report.findings[ORPHANS]] == [(email, True)]
    assert ghost not in app.idp.users  # type: ignore[attr-defined]
    assert await sql(app, "SELECT count(*) FROM users") == 0  # nothing held, nothing left


async def test_a_foreign_user_gone_before_its_adoption_counts_as_repaired(
    fake_app: Planted,
) -> None:
    app = fake_app.app
    remote_id = await foreign_id(fake_app, "legacy@example.com")
    finding = await scanned(app, ORPHANS, "legacy@example.com", DRY_ADOPT)
    await app.idp.delete(remote_id)
    await repairs.apply(app, finding, "test")
    assert (finding.done, finding.note) == (True, "already gone")
    assert await sql(app, ROWS_OF, e="legacy@example.com") == 0  # no row for nobody


@pytest.mark.parametrize(
    ("email", "note"),
    [
        ("no-at-sign", "left: its e-mail cannot be adopted: "),
        ("Legacy@Example.com", "left: its e-mail is not in normalized form in the IdP"),
    ],
)
async def test_a_foreign_user_whose_email_accord_cannot_hold_is_left_to_a_person(
    fake_app: Planted, email: str, note: str
) -> None:
    app = fake_app.app
    await fake_app.plant_foreign(email)
    report = await reconcile(app, ADOPT)
    (finding,) = report.findings[ORPHANS]
    assert finding.done is False and finding.note.startswith(note)
    assert await sql(app, "SELECT count(*) FROM users") == 0
    assert report.remaining == 1


async def test_a_foreign_user_whose_email_a_row_took_meanwhile_is_not_adopted(
    fake_app: Planted,
) -> None:
    app = fake_app.app
    await foreign_id(fake_app, "legacy@example.com")
    finding = await scanned(app, ORPHANS, "legacy@example.com", DRY_ADOPT)
    await scenes.never_finished_row(app, "legacy@example.com")
    await repairs.apply(app, finding, "test")
    assert (finding.done, finding.note) == (False, "left: a user with this e-mail exists now")
    assert await sql(app, ROWS_OF, e="legacy@example.com") == 1  # that row only
    assert await sql(app, "SELECT count(*) FROM idp_links") == 0


async def test_a_foreign_user_another_row_linked_meanwhile_is_not_adopted(
    fake_app: Planted,
) -> None:
    app = fake_app.app
    remote_id = await foreign_id(fake_app, "legacy@example.com")
    finding = await scanned(app, ORPHANS, "legacy@example.com", DRY_ADOPT)
    await take_link(fake_app, remote_id)
    await repairs.apply(app, finding, "test")
    assert (finding.done, finding.note) == (False, "left: the IdP user was linked meanwhile")
    assert await sql(app, ROWS_OF, e="legacy@example.com") == 0  # the adopted row rolled back

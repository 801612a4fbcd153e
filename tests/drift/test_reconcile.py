"""reconcile against every identity provider: each kind of drift, made on purpose, is reported,
repaired where that is safe, and a second repair run changes nothing (G1 to G4 hold after)."""

from __future__ import annotations

from uuid import UUID

import pytest

from accord.adapters.db.drift import DriftSession
from accord.domain import errors
from accord.domain.drift import DriftClass, ReconcileRunning
from accord.domain.ports import NewRemoteUser
from accord.services.merge import merge_organizations
from accord.services.reconcile import ReconcileOptions, reconcile
from accord.services.registration import Registration, register
from accord.testing import Fault
from tests.drift import scenes
from tests.drift.conftest import Planted, sql
from tests.engine.conftest import PLATFORM, new_org
from tests.guarantees import assert_guarantees

FIX_ALL = ReconcileOptions(fix=True, orphan_rows="deprovision", foreign_idp_users="adopt")


def emails(report, drift: DriftClass) -> set[str]:
    return {f.email for f in report.findings[drift]}


def actions(report) -> dict[str, tuple[str, bool]]:
    return {f.email: (f.action.value, f.done) for c in DriftClass for f in report.findings[c]}


async def plant_every_kind(planted: Planted) -> dict[str, object]:
    app = planted.app
    org = await new_org(app, max_users=20)
    await scenes.user(app, "healthy@example.com", org)
    await scenes.ghost_idp_user(app, "ghost@example.com")
    await planted.plant_foreign("legacy@example.com")
    await scenes.orphan_row(app, "gone@example.com", org)
    await scenes.never_finished_row(app, "halfway@example.com")
    await scenes.unlinked_match(app, "unlinked@example.com", org)
    mismatch = await scenes.email_mismatch(app, "mm@example.com", org, "mm.new@example.com")
    await scenes.stuck_operation(app, "late@example.com", org, past_deadline=True)
    await scenes.stuck_operation(app, "idle@example.com", org, past_deadline=False)
    bob = await register(app, Registration("bob@example.com", "correct horse 42", "Bob"))
    await scenes.duplicate_organization(app, bob["user"]["id"], "bob-org")
    return {"org": org, "mismatch": mismatch}


async def test_every_kind_of_drift_is_found_repaired_and_stays_repaired(planted: Planted) -> None:
    app = planted.app
    made = await plant_every_kind(planted)
    before = await scenes.snapshot(app)

    dry = await reconcile(app, ReconcileOptions())
    assert emails(dry, DriftClass.ORPHAN_IDP_USERS) == {"ghost@example.com", "legacy@example.com"}
    assert emails(dry, DriftClass.ORPHAN_ROWS) == {"gone@example.com", "halfway@example.com"}
    assert emails(dry, DriftClass.UNLINKED_MATCHES) == {"unlinked@example.com"}
    assert emails(dry, DriftClass.EMAIL_MISMATCHES) == {"mm@example.com"}
    assert emails(dry, DriftClass.STUCK_OPERATIONS) == {"late@example.com", "idle@example.com"}
    assert emails(dry, DriftClass.DUPLICATE_ORGANIZATIONS) == {"bob@example.com"}
    by_accord = {
        f.email: f.ids["created_by_accord"] for f in dry.findings[DriftClass.ORPHAN_IDP_USERS]
    }
    assert by_accord == {"ghost@example.com": True, "legacy@example.com": False}
    assert dry.remaining == 9
    assert await scenes.snapshot(app) == before, "a dry run changes nothing"

    fixed = await reconcile(app, FIX_ALL)
    assert actions(fixed) == {
        "late@example.com": ("resume", True),
        "idle@example.com": ("resume", True),
        "gone@example.com": ("deprovision", True),
        "halfway@example.com": ("remove_row", True),
        "unlinked@example.com": ("link", True),
        "mm@example.com": ("leave", False),
        "ghost@example.com": ("delete_idp_user", True),
        "legacy@example.com": ("adopt", True),
        "bob@example.com": ("leave", False),
    }
    assert await app.idp.find_by_email("ghost@example.com") is None
    assert await app.idp.find_by_email("late@example.com") is None  # compensated
    statuses = dict((await scenes.snapshot(app))["users"])
    assert statuses["gone@example.com"] == "disabled"
    assert statuses["idle@example.com"] == "pending"  # finished
    assert statuses["legacy@example.com"] == "active"  # adopted
    assert "halfway@example.com" not in statuses and "late@example.com" not in statuses
    repairs = await sql(app, "SELECT count(*) FROM audit_events WHERE action LIKE 'reconcile.%'")
    assert repairs == 7

    settled = await scenes.snapshot(app)
    again = await reconcile(app, FIX_ALL)
    assert await scenes.snapshot(app) == settled, "a second --fix changes nothing"
    assert again.remaining == 2  # what a person decides: the e-mail and the organizations

    # The person's part: which e-mail is right, and which organization stays.
    await app.idp.update(made["mismatch"]["remote_id"], email="mm@example.com")
    await merge_organizations(app, "bob-org", "bob", caller=PLATFORM, apply=True)
    clean = await reconcile(app, FIX_ALL)
    assert clean.remaining == 0 and sum(clean.found.values()) == 0
    await assert_guarantees(app)


async def test_recreate_gives_an_orphan_row_a_new_identity_and_a_setup_mail(
    fake_app: Planted,
) -> None:
    app = fake_app.app
    org = await new_org(app)
    gone = await scenes.orphan_row(app, "gone@example.com", org)

    report = await reconcile(app, ReconcileOptions(fix=True, orphan_rows="recreate"))

    assert actions(report) == {"gone@example.com": ("recreate", True)}
    remote = await app.idp.find_by_email("gone@example.com")
    assert remote is not None
    assert await sql(app, "SELECT remote_id FROM idp_links WHERE user_id = :u", u=gone["id"]) == (
        remote.remote_id
    )
    assert await sql(app, "SELECT status FROM users WHERE id = :u", u=gone["id"]) == "pending"
    mail = "SELECT count(*) FROM outbox WHERE dedupe_key LIKE 'reconcile-recreate:%'"
    assert await sql(app, mail) == 1
    assert (await reconcile(app, ReconcileOptions(fix=True))).remaining == 0
    await assert_guarantees(app)


async def test_a_row_left_half_made_and_its_identity_go_together_in_one_run(
    fake_app: Planted,
) -> None:
    """Seed 004's orphan: the IdP user was made, the row never finished, the request lost."""
    app = fake_app.app
    user_id = await scenes.never_finished_row(app, "half@example.com")
    await app.idp.create(NewRemoteUser(user_id, "half@example.com", "Half"))

    report = await reconcile(app, ReconcileOptions(fix=True, orphan_rows="deprovision"))

    done = [(f.drift, f.action.value, f.done) for c in DriftClass for f in report.findings[c]]
    assert sorted(done) == [
        (DriftClass.ORPHAN_IDP_USERS, "delete_idp_user", True),
        (DriftClass.ORPHAN_ROWS, "remove_row", True),
    ]
    assert await app.idp.find_by_email("half@example.com") is None
    assert (await reconcile(app, ReconcileOptions(fix=True))).found == dict.fromkeys(DriftClass, 0)
    await assert_guarantees(app)


async def test_a_link_newer_than_the_listing_is_confirmed_not_called_an_orphan(
    fake_app: Planted,
) -> None:
    """Auth0 lists from a snapshot taken when its export started: a user made after it is
    missing from the listing, yet exists. reconcile asks the IdP before judging."""
    app = fake_app.app
    org = await new_org(app)
    fresh = await scenes.user(app, "fresh@example.com", org)
    fake = app.idp
    listing = fake.iter_users

    async def snapshot_without_fresh(*, page_size: int = 100):
        async for remote in listing(page_size=page_size):
            if remote.remote_id != fresh["remote_id"]:
                yield remote

    fake.iter_users = snapshot_without_fresh  # type: ignore[method-assign]
    report = await reconcile(app, ReconcileOptions(fix=True, orphan_rows="deprovision"))
    assert report.found == dict.fromkeys(DriftClass, 0)
    assert await sql(app, "SELECT status FROM users WHERE id = :u", u=fresh["id"]) == "pending"


async def test_a_listing_that_fails_midway_repairs_nothing(fake_app: Planted) -> None:
    app = fake_app.app
    org = await new_org(app)
    await scenes.unlinked_match(app, "unlinked@example.com", org)
    await scenes.ghost_idp_user(app, "ghost@example.com")
    before = await scenes.snapshot(app)
    app.idp.script("iter_users", Fault.UNAVAILABLE)

    with pytest.raises(errors.ProviderUnavailable):
        await reconcile(app, FIX_ALL)

    assert await scenes.snapshot(app) == before


async def test_only_one_reconcile_runs_per_provider(fake_app: Planted) -> None:
    app = fake_app.app
    other = DriftSession(app.db.engine, app.idp.name)
    assert await other.try_lock()
    try:
        with pytest.raises(ReconcileRunning) as refused:
            await reconcile(app, ReconcileOptions())
        assert "Another reconcile is running" in refused.value.message
    finally:
        await other.close()
    assert (await reconcile(app, ReconcileOptions())).remaining == 0  # the lock was released


async def test_json_report_has_a_list_per_class_with_emails_and_ids(fake_app: Planted) -> None:
    app = fake_app.app
    org = await new_org(app)
    gone = await scenes.orphan_row(app, "gone@example.com", org)

    body = (await reconcile(app, ReconcileOptions())).as_dict()

    assert {c.value for c in DriftClass} <= set(body)
    assert body["drift_remaining"] == 1 and body["fix"] is False
    [item] = body["orphan_rows"]
    assert item["email"] == "gone@example.com"
    assert UUID(item["user_id"]) == UUID(gone["id"])
    assert item["reason"] == "idp_user_missing" and item["remote_id"] == gone["remote_id"]

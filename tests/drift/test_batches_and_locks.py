"""Work larger than one batch loses nothing (the listing staged, the rows judged, a batch at a
time); a report may count without keeping findings; cleanup waits for no reconcile, and a row
linked while cleanup looks it up is kept; a merge waits for the claims on its source."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

import pytest

from accord.domain import errors
from accord.domain.drift import DriftClass, ReconcileRunning
from accord.services import reconcile as reconcile_module
from accord.services.cleanup import cleanup_orphans
from accord.services.merge import merge_organizations
from accord.services.provisioning import NewUser, create_user
from accord.services.reconcile import ReconcileOptions, reconcile
from tests.drift import scenes
from tests.drift.conftest import Planted, sql
from tests.drift.test_races import Gated
from tests.engine.conftest import PLATFORM, new_org


async def test_a_listing_and_rows_over_many_batches_lose_no_finding(
    fake_app: Planted, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = fake_app.app
    monkeypatch.setattr(reconcile_module, "STAGE_BATCH", 2)
    monkeypatch.setattr(reconcile_module, "CONFIRM_BATCH", 2)
    org = await new_org(app)
    ghosts = {f"ghost{n}@example.com" for n in range(5)}
    gone = {f"gone{n}@example.com" for n in range(5)}
    for email in sorted(ghosts):
        await scenes.ghost_idp_user(app, email)
    for email in sorted(gone):
        await scenes.orphan_row(app, email, org)
    ticks: list[tuple[str, int]] = []

    report = await reconcile(app, ReconcileOptions(), progress=lambda s, n: ticks.append((s, n)))

    assert {f.email for f in report.findings[DriftClass.ORPHAN_IDP_USERS]} == ghosts
    assert {f.email for f in report.findings[DriftClass.ORPHAN_ROWS]} == gone
    assert [n for s, n in ticks if s == "listing IdP users"] == [2, 4, 5]  # 5 listed in 3
    assert [n for s, n in ticks if s == "checking rows"] == [2, 4, 5]


async def test_a_report_that_keeps_no_findings_still_counts_them(fake_app: Planted) -> None:
    app = fake_app.app
    await scenes.ghost_idp_user(app, "ghost@example.com")
    await scenes.orphan_row(app, "gone@example.com", await new_org(app))

    report = await reconcile(app, ReconcileOptions(fix=True), keep=False)

    assert all(not kept for kept in report.findings.values())  # memory: counts only
    assert report.found[DriftClass.ORPHAN_IDP_USERS] == report.fixed[DriftClass.ORPHAN_IDP_USERS]
    assert report.found[DriftClass.ORPHAN_ROWS] == 1 and report.remaining == 1
    summary = report.as_dict()["summary"]
    assert summary["orphan_idp_users"] == {"found": 1, "fixed": 1}


async def test_cleanup_refuses_to_run_beside_a_reconcile(fake_app: Planted) -> None:
    app = fake_app.app
    await scenes.never_finished_row(app, "halfway@example.com")
    ghost = await scenes.ghost_idp_user(app, "ghost@example.com")
    real = app.idp
    gated = Gated(real, {"delete": {ghost}})
    app.idp = gated  # type: ignore[assignment]
    repair = asyncio.create_task(reconcile(app, ReconcileOptions(fix=True)))
    await gated.all_waiting.wait()  # reconcile holds the provider's lock, mid-repair

    with pytest.raises(ReconcileRunning):
        await cleanup_orphans(app, remove=True)

    gated.open()
    await repair
    app.idp = real
    assert await sql(app, "SELECT count(*) FROM users WHERE email = 'halfway@example.com'") == 1
    assert [i["action"] for i in await cleanup_orphans(app, remove=True)] == ["removed"]


async def test_cleanup_keeps_a_row_linked_while_it_looked_the_row_up(fake_app: Planted) -> None:
    app = fake_app.app
    user_id = await scenes.never_finished_row(app, "halfway@example.com")
    real = app.idp
    gated = Gated(real, {"find_by_email": {"halfway@example.com"}})
    app.idp = gated  # type: ignore[assignment]
    cleanup = asyncio.create_task(cleanup_orphans(app, remove=True))
    await gated.all_waiting.wait()  # listed as never finished; its IdP lookup is late
    await sql(
        app,
        "INSERT INTO idp_links (user_id, provider, remote_id, created_by_accord) "
        "VALUES (:u, :p, 'elsewhere|1', false)",
        u=user_id,
        p=real.name,
    )
    gated.open()
    (item,) = await cleanup
    app.idp = real
    assert (item["action"], item["note"]) == ("kept", "kept: the row was linked meanwhile")
    assert await sql(app, "SELECT count(*) FROM users WHERE id = :u", u=user_id) == 1


async def test_a_merge_waits_for_the_claims_on_its_source(fake_app: Planted) -> None:
    app = fake_app.app
    source, target = await new_org(app, "Source"), await new_org(app, "Target")
    real = app.idp
    gated = Gated(real, {"create": {"x@example.com"}})
    app.idp = gated  # type: ignore[assignment]
    claim = asyncio.create_task(
        create_user(app, NewUser("x@example.com", "X", source), caller=PLATFORM)
    )
    await gated.all_waiting.wait()  # x's IdP user exists; its membership is not written yet

    with pytest.raises(errors.OperationInProgress):
        await merge_organizations(app, str(source), str(target), caller=PLATFORM, apply=True)

    gated.open()
    await claim
    app.idp = real
    done = await merge_organizations(app, str(source), str(target), caller=PLATFORM, apply=True)
    assert done["members_added"] == ["x@example.com"]  # the member it would have lost


async def test_a_merge_of_an_id_that_names_no_organization_is_refused(fake_app: Planted) -> None:
    app = fake_app.app
    target = await new_org(app, "Target")
    missing = uuid4()
    with pytest.raises(errors.OrganizationNotFound) as source_missing:
        await merge_organizations(app, str(missing), str(target), caller=PLATFORM, apply=True)
    assert str(missing) in source_missing.value.message
    with pytest.raises(errors.OrganizationNotFound):
        await merge_organizations(app, str(target), str(missing), caller=PLATFORM, apply=True)
    assert await sql(app, "SELECT count(*) FROM organizations WHERE id = :o", o=UUID(str(target)))

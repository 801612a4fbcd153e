"""The re-checks each repair makes under the row lock, each run at its exact window: the scan
has found the drift, then the world changes before the repair commits. The repair must leave
the finding (with the reason) and change nothing; a repair that fails is skipped and reported
while the others go on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from accord.bootstrap import Accord
from accord.domain.drift import DriftClass, Finding
from accord.domain.ports import NewRemoteUser
from accord.services import repairs
from accord.services.reconcile import ReconcileOptions, reconcile
from tests.contracts.test_store import operation
from tests.drift import scenes
from tests.drift.conftest import Planted, sql
from tests.drift.test_races import Gated
from tests.engine.conftest import new_org
from tests.guarantees import assert_guarantees

DEPROVISION = ReconcileOptions(fix=False, orphan_rows="deprovision", grace_seconds=0)
RECREATE = ReconcileOptions(fix=True, orphan_rows="recreate", grace_seconds=0)


async def scanned(app: Accord, options: ReconcileOptions, email: str) -> Finding:
    """The orphan-row finding for ``email`` of a dry run: the scan, before any repair."""
    report = await reconcile(app, options)
    (finding,) = [f for f in report.findings[DriftClass.ORPHAN_ROWS] if f.email == email]
    return finding


async def status(app: Accord, user_id: Any) -> str:
    return await sql(app, "SELECT status FROM users WHERE id = :u", u=UUID(str(user_id)))


async def link_to_a_new_identity(app: Accord, user_id: Any, email: str) -> str:
    """What another repair (or a person) does meanwhile: reconcile links the row to a working
    IdP user made elsewhere (so not marked as accord's own, and audited as a link)."""
    remote = await app.idp.create(NewRemoteUser(uuid4(), email, "Meanwhile"))
    await sql(
        app,
        "INSERT INTO idp_links (user_id, provider, remote_id, created_by_accord) "
        "VALUES (:u, :p, :r, false)",
        u=UUID(str(user_id)),
        p=app.idp.name,
        r=remote.remote_id,
    )
    await sql(
        app,
        "INSERT INTO audit_events (actor, action, subject_user_id) "
        "VALUES ('reconcile', 'reconcile.linked', :u)",
        u=UUID(str(user_id)),
    )
    return remote.remote_id


async def test_a_deprovision_leaves_a_row_an_operation_started_on_meanwhile(
    fake_app: Planted,
) -> None:
    app = fake_app.app
    row = await scenes.orphan_row(app, "ada@example.com", await new_org(app))
    finding = await scanned(app, DEPROVISION, "ada@example.com")
    lease = datetime.now(UTC) + timedelta(hours=1)
    async with app.store.transaction() as tx:  # an operation on this user begins after the scan
        await tx.operations.insert(operation(None, lease_until=lease))
    await repairs.apply(app, finding, "test")
    assert (finding.done, finding.note) == (False, "left: an operation is running for this user")
    assert await status(app, row["id"]) == "pending"  # untouched: its operation's runner decides


async def test_a_deprovision_leaves_a_row_linked_meanwhile(fake_app: Planted) -> None:
    app = fake_app.app
    row = await scenes.orphan_row(app, "ada@example.com", await new_org(app))
    finding = await scanned(app, DEPROVISION, "ada@example.com")
    await sql(app, "DELETE FROM idp_links WHERE user_id = :u", u=UUID(row["id"]))
    await link_to_a_new_identity(app, row["id"], "ada@example.com")
    await repairs.apply(app, finding, "test")
    assert (finding.done, finding.note) == (False, "left: the row was linked meanwhile")
    assert await status(app, row["id"]) == "pending"
    members = "SELECT count(*) FROM memberships WHERE user_id = :u"
    assert await sql(app, members, u=UUID(row["id"])) == 1  # access not cut
    await assert_guarantees(app)


async def test_a_recreate_that_finds_the_row_linked_meanwhile_deletes_what_it_made(
    fake_app: Planted,
) -> None:
    app = fake_app.app
    row = await scenes.orphan_row(app, "ada@example.com", await new_org(app))
    real = app.idp
    gated = Gated(real, {"create": {"ada@example.com"}})  # the repair's create, answered late
    app.idp = gated  # type: ignore[assignment]
    repair = asyncio.create_task(reconcile(app, RECREATE))
    await gated.all_waiting.wait()  # the repair's IdP user exists; its link is not written yet
    (made,) = [u for u in real.users.values() if u.email == "ada@example.com"]  # type: ignore[attr-defined]
    await sql(app, "DELETE FROM idp_links WHERE user_id = :u", u=UUID(row["id"]))
    await sql(
        app,
        "INSERT INTO idp_links (user_id, provider, remote_id, created_by_accord) "
        "VALUES (:u, :p, 'elsewhere|1', false)",
        u=UUID(row["id"]),
        p=real.name,
    )
    gated.open()
    report = await repair
    app.idp = real
    (finding,) = report.findings[DriftClass.ORPHAN_ROWS]
    assert (finding.done, finding.note) == (False, "left: the row was linked meanwhile")
    assert made.remote_id not in real.users  # type: ignore[attr-defined]  # undone
    recreated = "SELECT count(*) FROM outbox WHERE dedupe_key LIKE 'reconcile-recreate:%'"
    assert await sql(app, recreated) == 0  # no set-password mail either
    assert await status(app, row["id"]) == "pending"


async def test_a_repair_that_fails_is_skipped_and_reported_and_the_others_go_on(
    fake_app: Planted,
) -> None:
    app = fake_app.app
    org = await new_org(app)
    first = await scenes.orphan_row(app, "a@example.com", org)
    second = await scenes.orphan_row(app, "b@example.com", org)
    real = app.idp
    flaky = scenes.Flaky(real)
    flaky.fail("create")  # the first recreate's IdP call fails
    app.idp = flaky  # type: ignore[assignment]
    report = await reconcile(app, RECREATE)
    app.idp = real
    findings = {f.email: f for f in report.findings[DriftClass.ORPHAN_ROWS]}
    assert findings["a@example.com"].done is False
    assert findings["a@example.com"].note.startswith("left: idp_unavailable: flaky")
    assert findings["b@example.com"].done is True
    assert report.remaining == 1 and report.fixed[DriftClass.ORPHAN_ROWS] == 1
    assert await status(app, first["id"]) == "pending"  # left as it was, for the next run
    assert await status(app, second["id"]) == "pending"  # recreated, waiting for its password
    assert (await reconcile(app, RECREATE)).remaining == 0  # the next run repairs it
    await assert_guarantees(app)

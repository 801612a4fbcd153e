"""The set-wise import's fallbacks (services/bulk_import.py), on the built-in IdP and the real
database: a hook failing mid-batch, the bulk create failing (before or after it made some
identities), an organization deleted between claim and finalize, and a batch that fills an
organization next to a row that collides. In each, the rows end as the per-row engine would
end them, nothing is orphaned (G2, G3), nothing is created twice, and the seat limit holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from accord.config import Settings
from accord.domain import errors
from accord.domain.ports import NewRemoteUser, RemoteUser
from accord.services.hooks import ProvisionedUser
from accord.services.importer import import_users
from accord.services.offboarding import delete_organization
from tests.bulk_faults import BULK_ERRORS, BulkFaults, down, per_row_down
from tests.drift.conftest import Planted, _local, sql
from tests.drift.test_bulk_import import count_per_row, people, write
from tests.drift.test_import import results
from tests.engine.conftest import PLATFORM, new_org
from tests.guarantees import assert_guarantees
from tests.mailbox import make_everything_due


@pytest.fixture
async def faulty(settings: Settings) -> AsyncIterator[tuple[Planted, BulkFaults]]:
    async with _local(settings) as instance:
        idp = BulkFaults(instance.app.idp)
        instance.app.idp = idp
        yield instance, idp


def statuses(summary: Any) -> list[tuple[str, str | None]]:
    return [(r["status"], r.get("code")) for r in results(Path(summary.results))]


async def counts(app: Any) -> dict[str, Any]:
    """What a user cares about, counted in SQL."""
    q = {
        "identities": "SELECT count(*) FROM local_identities",
        "users": "SELECT count(*) FROM users",
        "pending": "SELECT count(*) FROM users WHERE status = 'pending'",
        "members": "SELECT count(*) FROM memberships",
        "ops": "SELECT count(*) FROM operations WHERE kind = 'create_user'",
        "succeeded": "SELECT count(*) FROM operations WHERE kind = 'create_user' "
        "AND state = 'succeeded'",
        "open": "SELECT count(*) FROM operations WHERE state = 'open'",
        "invitations": "SELECT count(*) FROM outbox WHERE kind = 'invitation'",
        "created_audit": "SELECT count(*) FROM audit_events WHERE action = 'user.created'",
        "created_feed": "SELECT count(*) FROM change_events WHERE type = 'user.created'",
    }
    return {name: await sql(app, query) for name, query in q.items()}


def done(n: int) -> dict[str, int]:
    """The counts of ``n`` users created once each, nothing else."""
    return {
        "identities": n,
        "users": n,
        "pending": n,
        "members": n,
        "ops": n,
        "succeeded": n,
        "open": 0,
        "invitations": n,
        "created_audit": n,
        "created_feed": n,
    }


# -- a hook failing mid-batch ---------------------------------------------------------------------


async def test_a_hook_failing_mid_batch_fails_only_its_row(
    faulty: tuple[Planted, BulkFaults], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (planted, idp) = faulty
    app = planted.app
    async with app.db.transaction() as conn:
        await conn.execute(text("CREATE TABLE employees (user_id uuid PRIMARY KEY, email text)"))

    async def hr(conn: Any, user: ProvisionedUser) -> None:
        await conn.execute(
            text("INSERT INTO employees VALUES (:id, :email)"),
            {"id": user.user_id, "email": user.email},
        )
        if user.email == "p3@example.com":
            raise RuntimeError("the HR system said no")

    app.hooks.register(hr)
    org = await new_org(app, max_users=20)
    source = write(tmp_path / "u.csv", people(org, 10))
    per_row = count_per_row(monkeypatch)

    summary = await import_users(app, source, caller=PLATFORM, batch_size=10)

    got = statuses(summary)
    assert got[3] == ("error", "hook_failed")
    assert got[:3] + got[4:] == [("created", None)] * 9
    assert per_row["rows"] == 10  # finalize rolled back whole: every row went on alone
    assert idp.calls == 1  # and none of them asked the IdP for another identity
    assert await counts(app) == done(9) | {"ops": 10}
    assert (
        await sql(app, "SELECT state FROM operations WHERE request->>'email' = 'p3@example.com'")
        == "failed"
    )
    # The hook's own rows: the nine committed creates' only (the rolled-back batch left none).
    assert await sql(app, "SELECT count(*) FROM employees") == 9
    assert await sql(app, "SELECT count(*) FROM employees WHERE email = 'p3@example.com'") == 0
    await assert_guarantees(app)  # p3's identity is gone with its failure (G3, G7)

    # A rerun replays every row's stored answer, p3's failure too (G6, as on the per-row path),
    # even with the hook mended: nothing is created or asked of the IdP again.
    app.hooks.on_user_provisioned.clear()
    rerun = await import_users(app, source, caller=PLATFORM, batch_size=10)
    assert (
        statuses(rerun)
        == [("exists", None)] * 3 + [("error", "hook_failed")] + [("exists", None)] * 6
    )
    assert idp.calls == 1
    assert await counts(app) == done(9) | {"ops": 10}


# -- the bulk create fails ------------------------------------------------------------------------


@pytest.mark.parametrize("made", [0, 7])
@BULK_ERRORS
async def test_a_failed_bulk_create_leaves_the_rows_to_the_per_row_path(
    faulty: tuple[Planted, BulkFaults],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    made: int,
    error: errors.AccordError,
) -> None:
    (planted, idp) = faulty
    app = planted.app
    org = await new_org(app, max_users=12)  # 3 rows too many: the limit binds
    source = write(tmp_path / "u.csv", people(org, 15))
    idp.faults.append(down(made, error))
    per_row = count_per_row(monkeypatch)

    summary = await import_users(app, source, caller=PLATFORM, batch_size=15)

    # Each claimed row found out the per-row way: its identity made by the failed bulk create
    # (it carries the row's own user id) is recognised as its own, the others are created; the
    # claims held their seats meanwhile, and the three past the limit were never claimed.
    full = [("error", "organization_full")] * 3
    assert statuses(summary) == [("created", None)] * 12 + full
    assert per_row["rows"] == 15
    assert await counts(app) == done(12) | {"ops": 15}
    members = "SELECT count(*) FROM memberships WHERE organization_id = :o"
    assert await sql(app, members, o=org) == 12  # G5, exactly
    await assert_guarantees(app)

    rerun = await import_users(app, source, caller=PLATFORM, batch_size=15)
    assert statuses(rerun) == [("exists", None)] * 12 + full
    assert await counts(app) == done(12) | {"ops": 15}


async def test_an_idp_down_when_the_batch_looks_identities_up_leaves_the_rows_per_row(
    faulty: tuple[Planted, BulkFaults], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (planted, idp) = faulty
    app = planted.app
    org = await new_org(app, max_users=20)
    await planted.plant_foreign("foreign@example.com")
    rows = [*people(org, 9), {"email": "foreign@example.com", "full_name": "F"}]
    rows[-1]["organization_id"] = str(org)
    idp.existing_fails = 1
    per_row = count_per_row(monkeypatch)

    summary = await import_users(app, write(tmp_path / "u.csv", rows), caller=PLATFORM)

    assert statuses(summary) == [("created", None)] * 9 + [("error", "identity_exists")]
    assert per_row["rows"] == 10 and idp.calls == 0  # nothing known: every row alone
    assert await counts(app) == done(9) | {"identities": 10, "ops": 10}
    await assert_guarantees(app)


@pytest.mark.parametrize("made", [0, 7])
async def test_an_idp_down_for_the_whole_import_leaves_open_operations_a_rerun_completes(
    faulty: tuple[Planted, BulkFaults],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    made: int,
) -> None:
    (planted, idp) = faulty
    app = planted.app
    org = await new_org(app, max_users=20)
    source = write(tmp_path / "u.csv", people(org, 15))
    idp.faults.append(down(made))

    with monkeypatch.context() as m:  # the per-row calls find it down too
        per_row_down(m, idp)
        summary = await import_users(app, source, caller=PLATFORM, batch_size=15)

    got = Counter(statuses(summary))
    assert set(got) == {("error", "idp_unavailable")}, got  # pending: the operation goes on
    assert await sql(app, "SELECT count(*) FROM users WHERE status = 'pending'") == 0
    assert await sql(app, "SELECT count(*) FROM memberships") == 0
    assert await sql(app, "SELECT count(*) FROM local_identities") == made  # not orphans:
    await assert_guarantees(app)  # each is its open operation's, which will find it

    await make_everything_due(app)
    rerun = await import_users(app, source, caller=PLATFORM, batch_size=15)
    assert {s for s, _ in statuses(rerun)} == {"created"}
    assert await counts(app) == done(15)  # nothing created twice
    await assert_guarantees(app)


# -- an organization deleted between claim and finalize -------------------------------------------


async def test_an_organization_deleted_between_claim_and_finalize(
    faulty: tuple[Planted, BulkFaults], tmp_path: Path
) -> None:
    (planted, idp) = faulty
    app = planted.app
    gone, stays = await new_org(app, "Gone", max_users=20), await new_org(app, "Stays")

    async def offboard_meanwhile(inner: Any, users: Sequence[NewRemoteUser]) -> list[RemoteUser]:
        made: list[RemoteUser] = await inner.create_many(users)
        await delete_organization(app, gone, caller=PLATFORM)
        return made

    idp.faults.append(offboard_meanwhile)  # the first group of the batch: Gone's
    rows = people(gone, 6) + people(stays, 4, start=6)
    summary = await import_users(app, write(tmp_path / "u.csv", rows), caller=PLATFORM)

    assert statuses(summary) == [("error", "organization_not_found")] * 6 + [("created", None)] * 4
    ops = "SELECT count(*) FROM operations WHERE kind = 'create_user' AND state = :s"
    assert (await sql(app, ops, s="failed"), await sql(app, ops, s="succeeded")) == (6, 4)
    assert await sql(app, "SELECT count(*) FROM users") == 4
    assert (
        await sql(app, "SELECT count(*) FROM memberships WHERE organization_id = :o", o=stays) == 4
    )
    assert await sql(app, "SELECT count(*) FROM organizations WHERE id = :o", o=gone) == 0
    assert await sql(app, "SELECT count(*) FROM local_identities") == 4  # Gone's undone (G3)
    assert await sql(app, "SELECT count(*) FROM outbox WHERE kind = 'invitation'") == 4
    await assert_guarantees(app)


# -- a batch that fills an organization, next to a colliding row ----------------------------------


async def test_a_batch_that_fills_an_organization_gives_its_seats_to_the_rows_that_can_use_them(
    faulty: tuple[Planted, BulkFaults], tmp_path: Path
) -> None:
    """The decision (DESIGN.md orders no rows; G5 and G11 are what must hold): the new rows
    take the seats, in file order, and a row whose e-mail has a foreign identity, processed
    after them, finds the organization full: ``organization_full``, as the engine answers any
    create into a full organization (it counts the seat at claim, before it asks the IdP).

    A strictly sequential import (``--batch-size 0 --parallelism 1``) that meets the colliding
    row first answers ``identity_exists`` for it instead (its claim takes a seat and gives it
    back); the per-row import at its default parallelism may answer either, and may even turn a
    new row away while the doomed claim holds a seat. Giving the sequential answer set-wise
    would need the rows the batch leaves to run one at a time in file order, interleaved with
    the set-wise claims: not worth it for an answer that changes no row, member or identity.
    Once there is room, a rerun answers ``identity_exists``."""
    (planted, _) = faulty
    app = planted.app
    foreign = {"email": "foreign@example.com", "full_name": "F"}
    members = "SELECT count(*) FROM memberships WHERE organization_id = :o"
    answers: dict[str, list[tuple[str, str | None]]] = {}
    ways: dict[str, dict[str, Any]] = {
        "set-wise": {"batch_size": 500},
        "sequential": {"batch_size": 0, "parallelism": 1},
    }
    for how, options in ways.items():
        org = await new_org(app, f"Org {how}", max_users=3)
        rows = [foreign | {"organization_id": str(org)}, *people(org, 3, start=len(answers) * 3)]
        source = write(tmp_path / f"{how}.csv", rows)
        if not answers:
            await planted.plant_foreign("foreign@example.com")
        answers[how] = statuses(await import_users(app, source, caller=PLATFORM, **options))
        assert answers[how][1:] == [("created", None)] * 3
        assert await sql(app, members, o=org) == 3  # G5: the limit, exactly
    assert answers["set-wise"][0] == ("error", "organization_full")
    assert answers["sequential"][0] == ("error", "identity_exists")
    foreign_left = "SELECT count(*) FROM local_identities WHERE email = 'foreign@example.com' "
    assert await sql(app, foreign_left + "AND accord_user_id IS NULL") == 1  # G11: untouched
    await assert_guarantees(app)

    org = await new_org(app, "Roomy", max_users=3)  # with room, set-wise too: identity_exists
    rows = [foreign | {"organization_id": str(org)}, *people(org, 2, start=10)]
    summary = await import_users(app, write(tmp_path / "roomy.csv", rows), caller=PLATFORM)
    assert statuses(summary) == [("error", "identity_exists")] + [("created", None)] * 2

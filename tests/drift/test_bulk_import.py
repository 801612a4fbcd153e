"""accord import on the built-in IdP goes set-wise (services/bulk_import.py): a batch writes
what the per-row engine writes, every guarantee holds, a rerun creates nothing, collisions get
the per-row answers, a batch stopped between its phases is finished by the worker or a rerun,
and two imports of one file create each user once."""

from __future__ import annotations

import asyncio
import csv
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from accord.config import Settings
from accord.services import bulk_import, importer, worker
from accord.services.crashpoints import CrashPoint
from accord.services.importer import import_users
from accord.services.provisioning import NewUser, create_user
from accord.testing import FakeMailer
from tests.drift.conftest import Planted, _local, sql
from tests.drift.test_import import check_import, results
from tests.engine.conftest import PLATFORM, new_org
from tests.guarantees import assert_guarantees
from tests.mailbox import make_everything_due


@pytest.fixture
async def local_app(settings: Settings) -> AsyncIterator[Planted]:
    async with _local(settings) as instance:
        yield instance


def count_per_row(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the rows that went through the per-row path (``importer._provision``)."""
    calls: Counter[str] = Counter()
    original = importer._provision

    async def counted(ctx: Any, row: dict[str, Any]) -> dict[str, Any]:
        calls["rows"] += 1
        return await original(ctx, row)

    monkeypatch.setattr(importer, "_provision", counted)
    return calls


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["email", "full_name", "organization_id", "role"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def people(org: UUID, count: int, start: int = 0) -> list[dict[str, str]]:
    return [
        {"email": f"p{n}@example.com", "full_name": f"P {n}", "organization_id": str(org)}
        for n in range(start, start + count)
    ]


async def test_thousands_of_rows_go_set_wise_and_a_rerun_creates_nothing(
    local_app: Planted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    per_row = count_per_row(monkeypatch)
    # check_import (tests/drift/test_import.py): 1% bad rows with their codes, one foreign
    # identity adopted, a rerun that answers every row ``exists`` and adds no operation.
    await check_import(local_app, tmp_path, 3000)
    # Per-row: the adopted identity, and the 7 rows naming an organization that does not exist
    # (its seat count finds none) in both runs. Everything else is set-wise in the first run
    # and replayed set-wise in the second.
    assert per_row["rows"] == 1 + 2 * 7
    await assert_guarantees(local_app.app)
    app = local_app.app
    assert await sql(app, "SELECT count(*) FROM outbox WHERE kind = 'invitation'") == 3000 - 31
    feed = "SELECT count(*) FROM change_events WHERE type = :t AND version = 1"
    assert await sql(app, feed, t="user.created") == 3000 - 30
    assert await sql(app, feed, t="membership.added") == 3000 - 30


async def _traces(app: Any, user_id: str) -> dict[str, Any]:
    """What the create of one user left: every row a per-row create writes, shape only."""
    q = {
        "op": "SELECT jsonb_build_object('state', state, 'point', recovery_point, 'flow', "
        "flow_state, 'created_remote', created_remote, 'attempts', attempts, 'lease', "
        "lease_until IS NULL, 'keys', (SELECT array_agg(k ORDER BY k) FROM "
        "jsonb_object_keys(result) k), 'reused', result->'reused_identity', 'credential', "
        "result->'credential') FROM operations WHERE user_id = :u",
        "audit": "SELECT array_agg(action ORDER BY id) FROM audit_events "
        "WHERE subject_user_id = :u",
        "feed": "SELECT array_agg(type || ':' || version || ':' || array_to_string(changed, ',') "
        "ORDER BY seq) FROM change_events WHERE user_id = :u",
        "user": "SELECT status || ':' || version || ':' || require_password_change FROM users "
        "WHERE id = :u",
        "link": "SELECT created_by_accord FROM idp_links WHERE user_id = :u",
        "mail": "SELECT array_agg(kind) FROM outbox WHERE payload->>'user_id' = CAST(:u AS text)",
        "member": "SELECT role FROM memberships WHERE user_id = :u",
    }
    return {name: await sql(app, query, u=UUID(user_id)) for name, query in q.items()}


async def test_a_batch_writes_what_the_per_row_engine_writes(
    local_app: Planted, tmp_path: Path
) -> None:
    app = local_app.app
    org = await new_org(app, max_users=10)
    alone = await create_user(
        app,
        NewUser(email="alone@example.com", full_name="Alone", organization_id=org),
        caller=PLATFORM,
        idempotency_key="import:by-hand",
    )
    summary = await import_users(app, write(tmp_path / "u.csv", people(org, 3)), caller=PLATFORM)
    [first, *_] = results(Path(summary.results))
    assert first["status"] == "created"
    assert await _traces(app, first["user_id"]) == await _traces(app, alone["user"]["id"])


async def test_collisions_get_the_per_row_answers(
    local_app: Planted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = local_app.app
    org, small = await new_org(app, max_users=10), await new_org(app, "Small", max_users=3)
    await local_app.plant_foreign("foreign@example.com")
    await import_users(app, write(tmp_path / "a.csv", people(org, 1)), caller=PLATFORM)
    per_row = count_per_row(monkeypatch)
    rows = [
        {"email": "P0@example.com", "full_name": "P 0 again", "organization_id": str(org)},
        {"email": "foreign@example.com", "full_name": "F", "organization_id": str(org)},
        *people(org, 4, start=1),
        {"email": "p1@example.com", "full_name": "P 1", "organization_id": str(org)},  # twice
        {"email": "bad", "full_name": "Bad", "organization_id": str(org)},
        *people(small, 5, start=5),  # 3 fit, 2 find the organization full
    ]
    summary = await import_users(app, write(tmp_path / "b.csv", rows), caller=PLATFORM)

    got = [(r["status"], r.get("code")) for r in results(Path(summary.results))]
    assert got == [
        ("exists", None),  # an earlier import made p0: email_exists, reported as exists
        ("error", "identity_exists"),  # G11: not adopted without adopt_existing
        *[("created", None)] * 4,
        ("exists", None),  # the second row for p1 replays the first (its key)
        ("error", "email_invalid"),
        *[("created", None)] * 3,
        *[("error", "organization_full")] * 2,
    ]
    assert per_row["rows"] == 5  # the collisions and the claims past the limit
    members = "SELECT count(*) FROM memberships WHERE organization_id = :o"
    assert (await sql(app, members, o=org), await sql(app, members, o=small)) == (5, 3)
    await assert_guarantees(app)


@pytest.mark.parametrize(
    "point",
    [
        CrashPoint.AFTER_CLAIM,
        CrashPoint.IDP_ANSWERED,
        CrashPoint.AFTER_RECOVERY_POINT,
        CrashPoint.BEFORE_FINALIZE_COMMIT,
    ],
)
@pytest.mark.parametrize("finisher", ["worker", "rerun"])
async def test_a_batch_stopped_between_phases_is_finished_row_by_row(
    local_app: Planted,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    point: CrashPoint,
    finisher: str,
) -> None:
    app = local_app.app
    org = await new_org(app, max_users=50)
    source = write(tmp_path / "u.csv", people(org, 40))

    class Crash(Exception):
        pass

    def reach(settings: Any, where: CrashPoint) -> None:
        if where == point:
            raise Crash(where)

    monkeypatch.setattr(bulk_import.crashpoints, "reach", reach)
    with pytest.raises(Crash):
        await import_users(app, source, caller=PLATFORM, batch_size=20)
    monkeypatch.undo()
    await make_everything_due(app)  # the dead process's leases end
    if finisher == "worker":
        await worker.run_until_idle(app, FakeMailer())
    summary = await import_users(app, source, caller=PLATFORM, batch_size=20)

    statuses = Counter(r["status"] for r in results(Path(summary.results)))
    assert set(statuses) <= {"created", "exists"} and sum(statuses.values()) == 40
    assert await sql(app, "SELECT count(*) FROM users WHERE status = 'pending'") == 40
    assert await sql(app, "SELECT count(*) FROM operations WHERE state = 'succeeded'") == 40
    assert await sql(app, "SELECT count(*) FROM operations") == 40
    await assert_guarantees(app)


async def test_two_imports_of_one_file_create_each_user_once(
    local_app: Planted, tmp_path: Path
) -> None:
    app = local_app.app
    org = await new_org(app, max_users=600)
    source = write(tmp_path / "u.csv", people(org, 500))
    one, two = (tmp_path / "one.jsonl", tmp_path / "two.jsonl")

    await asyncio.gather(
        import_users(app, source, caller=PLATFORM, results=one, batch_size=100),
        import_users(app, source, caller=PLATFORM, results=two, batch_size=100),
    )

    for out in (one, two):
        assert {r["status"] for r in results(out)} <= {"created", "exists"}
    # A row the other run had claimed is rejoined and may read ``created`` in both (as on the
    # per-row path): what matters is that each user, identity and operation exists once.
    created = {r["email"] for out in (one, two) for r in results(out) if r["status"] == "created"}
    assert len(created) == 500
    assert await sql(app, "SELECT count(*) FROM local_identities") == 500
    assert await sql(app, "SELECT count(*) FROM users") == 500
    assert await sql(app, "SELECT count(*) FROM operations") == 500
    await assert_guarantees(app)

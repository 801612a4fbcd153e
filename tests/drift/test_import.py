"""accord import: every good row provisioned through the engine, every bad row reported with its
code, and a rerun that creates nothing."""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from accord.services import importer
from accord.services.importer import import_users, row_key
from accord.testing import Fault
from tests.drift.conftest import Planted, sql
from tests.engine.conftest import PLATFORM, new_org
from tests.mailbox import make_everything_due

# One bad row in a hundred, of each kind an old export has, with the code each must get.
BAD_KINDS = [
    ({"email": "not-an-email"}, "email_invalid"),
    ({"full_name": "   "}, "invalid_input"),
    ({"role": "boss"}, "invalid_input"),
    ({"organization_id": str(uuid4()), "organization_name": ""}, "organization_not_found"),
]


def write_rows(path: Path, count: int, org: UUID) -> dict[int, str]:
    """``count`` rows, 1% of them bad; returns each bad row's line and expected code."""
    bad: dict[int, str] = {}
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(
            handle, ["email", "full_name", "organization_id", "organization_name", "role"]
        )
        writer.writeheader()
        for n in range(count):
            row = {"email": f"User{n}@Example.com", "full_name": f"User {n}", "role": "org_user"}
            if n % 2:
                row["organization_name"] = "Imported Team"
            else:
                row["organization_id"] = str(org)
            if n % 100 == 50:
                change, code = BAD_KINDS[(n // 100) % len(BAD_KINDS)]
                row |= change
                bad[n + 2] = code  # the header is line 1
            writer.writerow(row)
    return bad


def results(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def check_import(planted: Planted, tmp_path: Path, count: int) -> dict[str, float]:
    app = planted.app
    org = await new_org(app, "Imported", max_users=count)
    await planted.plant_foreign("user3@example.com")  # older code left it: adopted on request
    source = tmp_path / "users.csv"
    bad = write_rows(source, count, org)
    out = tmp_path / "first.jsonl"

    started = time.perf_counter()
    summary = await import_users(
        app,
        source,
        caller=PLATFORM,
        results=out,
        parallelism=4,
        max_users=count,
        adopt_existing=True,
    )
    first_seconds = time.perf_counter() - started

    first = results(out)
    assert [r["line"] for r in first] == list(range(2, count + 2))
    errors = {r["line"]: r["code"] for r in first if r["status"] == "error"}
    assert errors == bad, "every bad row is reported with its code"
    statuses = Counter(r["status"] for r in first)
    assert statuses == {"created": count - len(bad) - 1, "adopted": 1, "error": len(bad)}
    assert summary.as_dict()["rows"] == count
    assert await sql(app, "SELECT count(*) FROM users") == count - len(bad)
    operations = await sql(app, "SELECT count(*) FROM operations")

    started = time.perf_counter()
    again = tmp_path / "second.jsonl"
    await import_users(
        app, source, caller=PLATFORM, results=again, max_users=count, adopt_existing=True
    )
    rerun_seconds = time.perf_counter() - started

    second = results(again)
    assert Counter(r["status"] for r in second) == {"exists": count - len(bad), "error": len(bad)}
    assert {r["line"]: r["code"] for r in second if r["status"] == "error"} == bad
    assert await sql(app, "SELECT count(*) FROM users") == count - len(bad)
    assert await sql(app, "SELECT count(*) FROM operations") == operations, "a rerun does nothing"
    return {"first_seconds": first_seconds, "rerun_seconds": rerun_seconds}


async def test_import_1000_rows_with_bad_ones_then_rerun(fake_app: Planted, tmp_path: Path) -> None:
    await check_import(fake_app, tmp_path, 1000)


@pytest.mark.soak
async def test_import_10000_rows_with_bad_ones_then_rerun(
    fake_app: Planted, tmp_path: Path
) -> None:
    timings = await check_import(fake_app, tmp_path, 10_000)
    print(f"import of 10,000 rows: {timings}")


async def test_json_lines_with_unreadable_lines_and_names_of_new_organizations(
    fake_app: Planted, tmp_path: Path
) -> None:
    app = fake_app.app
    source = tmp_path / "users.jsonl"
    lines = [
        json.dumps({"email": "a@example.com", "full_name": "A", "organization_name": "New Co"}),
        "{not json",
        json.dumps({"email": "b@example.com", "name": "B", "organization_name": " New  Co "}),
        json.dumps(["a", "list"]),
        json.dumps({"email": "c@example.com", "full_name": "C"}),
    ]
    source.write_text("\n".join(lines) + "\n")

    summary = await import_users(app, source, caller=PLATFORM)

    rows = results(Path(summary.results))
    assert summary.results == str(tmp_path / "users.jsonl.results.jsonl")
    assert [(r["line"], r["status"], r.get("code")) for r in rows] == [
        (1, "created", None),
        (2, "error", "invalid_input"),
        (3, "created", None),
        (4, "error", "invalid_input"),
        (5, "error", "invalid_input"),  # no organization, and no --org
    ]
    assert await sql(app, "SELECT array_agg(slug) FROM organizations") == ["new-co"]


async def test_default_organization_and_users_that_exist_already(
    fake_app: Planted, tmp_path: Path
) -> None:
    app = fake_app.app
    org = await new_org(app)
    source = tmp_path / "users.csv"
    source.write_text("email,full_name\nann@example.com,Ann\n")
    await import_users(app, source, caller=PLATFORM, default_org=str(org))
    other = tmp_path / "other.csv"
    other.write_text("email,full_name,role\nANN@example.com,Ann B,org_admin\n")

    summary = await import_users(app, other, caller=PLATFORM, default_org=str(org))

    [row] = results(Path(summary.results))
    assert row["status"] == "exists"  # another import made her: reported, not changed


def test_the_key_of_a_row_ignores_spelling() -> None:
    first = {"email": " Ann@Example.com", "full_name": "Ann  Lee", "organization_name": "Co"}
    second = {"email": "ann@example.com", "name": "Ann Lee", "organization_name": " Co ", "x": 1}
    assert row_key(first) == row_key(second)
    assert row_key(first) != row_key({**first, "role": "org_admin"})


async def test_a_file_without_a_known_suffix_is_read_by_its_first_character(
    fake_app: Planted, tmp_path: Path
) -> None:
    app = fake_app.app
    org = await new_org(app)
    jsonl = tmp_path / "export.txt"
    one, two = ({"email": f"{n}@example.com", "full_name": n} for n in ("one", "two"))
    jsonl.write_text(json.dumps(one) + "\n\n   \n" + json.dumps(two) + "\n")  # blank lines
    csv_file = tmp_path / "export"
    csv_file.write_text("email,full_name\nthree@example.com,Three\n")

    from_json = await import_users(app, jsonl, caller=PLATFORM, default_org=str(org))
    from_csv = await import_users(app, csv_file, caller=PLATFORM, default_org=str(org))

    assert [(r["line"], r["status"]) for r in results(Path(from_json.results))] == [
        (1, "created"),
        (4, "created"),  # blank lines are skipped, not reported, and still counted as lines
    ]
    assert [(r["line"], r["status"]) for r in results(Path(from_csv.results))] == [(2, "created")]
    assert await sql(app, "SELECT count(*) FROM users") == 3


async def test_a_row_the_idp_could_not_take_names_its_operation_and_a_rerun_ends_it(
    fake_app: Planted, tmp_path: Path
) -> None:
    app = fake_app.app
    org = await new_org(app)
    source = tmp_path / "users.csv"
    source.write_text("email,full_name\nann@example.com,Ann\n")
    app.idp.script("create", Fault.UNAVAILABLE)  # type: ignore[attr-defined]

    [first] = results(
        Path((await import_users(app, source, caller=PLATFORM, default_org=str(org))).results)
    )
    assert (first["status"], first["code"]) == ("error", "idp_unavailable")
    state = "SELECT state FROM operations WHERE id = :o"
    assert await sql(app, state, o=UUID(first["operation_id"])) == "open"

    await make_everything_due(app)  # its retry is due
    [rerun] = results(
        Path((await import_users(app, source, caller=PLATFORM, default_org=str(org))).results)
    )
    assert rerun["status"] == "created"
    assert await sql(app, state, o=UUID(first["operation_id"])) == "succeeded"


async def test_an_organization_id_that_is_not_a_uuid_is_reported(
    fake_app: Planted, tmp_path: Path
) -> None:
    app = fake_app.app
    source = tmp_path / "users.csv"
    source.write_text("email,full_name,organization_id\nann@example.com,Ann,acme\n")
    [row] = results(Path((await import_users(app, source, caller=PLATFORM)).results))
    assert (row["status"], row["code"]) == ("error", "invalid_input")
    assert "'acme' is not a UUID" in row["message"]
    assert await sql(app, "SELECT count(*) FROM users") == 0


async def test_organizations_forgotten_by_the_bounded_cache_are_found_not_made_twice(
    fake_app: Planted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = fake_app.app
    monkeypatch.setattr(importer, "ORG_CACHE_LIMIT", 1)
    source = tmp_path / "users.csv"
    names = ["Red", "Blue", "Red", "Blue"]
    rows = "".join(f"u{n}@example.com,U {n},{name}\n" for n, name in enumerate(names))
    source.write_text("email,full_name,organization_name\n" + rows)

    summary = await import_users(app, source, caller=PLATFORM, parallelism=1)

    assert summary.counts == Counter(created=4)
    members = await sql(
        app,
        "SELECT jsonb_object_agg(o.slug, (SELECT count(*) FROM memberships m "
        "WHERE m.organization_id = o.id)) FROM organizations o",
    )
    assert members == {"red": 2, "blue": 2}  # no "red-2": evicted names are looked up again

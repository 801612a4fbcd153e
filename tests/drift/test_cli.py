"""The drift commands, run as an operator runs them: real processes, the local IdP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from accord.adapters.db.drift import lock_key
from accord.adapters.db.engine import sync_engine
from accord.adapters.sealing import new_key_text
from accord.domain.drift import DriftClass
from tests.e2e.conftest import run_accord


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a CLI run against this test's database (as tests/e2e's)."""
    return {
        "ACCORD_DATABASE_URL": database_url,
        "ACCORD_DATA_DIR": str(tmp_path),
        "ACCORD_SECRET_KEY": new_key_text(),
    }


@pytest.fixture
def db(database_url: str) -> Iterator[Connection]:
    """A connection to the test's database, for planting drift as older code left it."""
    engine = sync_engine(database_url)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def run_sql(db: Connection, statement: str, **params: object) -> object:
    result = db.execute(text(statement), params)
    db.commit()
    return result.scalar() if result.returns_rows else None


def test_reconcile_reports_fixes_and_exits_0_or_3(cli_env: dict[str, str], db) -> None:
    run_sql(
        db,
        "INSERT INTO local_identities (id, email) VALUES (:i, 'legacy@example.com')",
        i=str(uuid.uuid4()),
    )
    found = run_accord("reconcile", "--json", env=cli_env)
    assert found.code == 3, found.stderr
    body = found.json()
    assert {c.value for c in DriftClass} <= set(body)
    assert body["drift_remaining"] == 1 and body["summary"]["orphan_rows"]["found"] == 0
    [item] = body["orphan_idp_users"]
    assert item["email"] == "legacy@example.com" and item["created_by_accord"] is False
    assert item["remote_id"] and item["action"] == "leave"

    told = run_accord("reconcile", env=cli_env)
    assert told.code == 3
    assert "orphan_idp_users: 1 found, 0 fixed" in told.stdout
    assert "legacy@example.com  left for a person" in told.stdout

    fixed = run_accord("reconcile", "--fix", "--foreign-idp-users", "adopt", env=cli_env)
    assert fixed.code == 0, fixed.stdout  # no drift remains
    assert "legacy@example.com  done: adopt" in fixed.stdout
    adopted = "SELECT count(*) FROM audit_events WHERE action = 'reconcile.identity_adopted'"
    assert run_sql(db, adopted) == 1


def test_a_second_reconcile_says_so_and_exits(cli_env: dict[str, str], db) -> None:
    run_sql(db, "SELECT pg_advisory_lock(:k)", k=lock_key("local"))
    try:
        second = run_accord("reconcile", "--json", env=cli_env)
    finally:
        run_sql(db, "SELECT pg_advisory_unlock(:k)", k=lock_key("local"))
    assert second.code == 1
    assert second.json()["code"] == "reconcile_running"


def test_cleanup_orphans_lists_then_removes_with_yes(cli_env: dict[str, str], db) -> None:
    run_sql(
        db,
        "INSERT INTO users (id, email, full_name, status) "
        "VALUES (:i, 'halfway@example.com', 'Half', 'provisioning')",
        i=uuid.uuid4(),
    )
    listed = run_accord("cleanup-orphans", "--json", env=cli_env)
    assert listed.code == 0, listed.stderr
    assert [(i["email"], i["action"]) for i in listed.json()] == [
        ("halfway@example.com", "would_remove")
    ]
    removed = run_accord("cleanup-orphans", "Halfway@example.com", "--yes", env=cli_env)
    assert removed.code == 0, removed.stderr
    assert "halfway@example.com  provisioning  removed" in removed.stdout
    assert run_sql(db, "SELECT count(*) FROM users") == 0
    audit = "SELECT count(*) FROM audit_events WHERE action = 'user.orphan_removed'"
    assert run_sql(db, audit) == 1


def add_org(db: Connection, slug: str) -> str:
    org_id = str(uuid.uuid4())
    run_sql(
        db,
        "INSERT INTO organizations (id, slug, display_name, kind) VALUES (:i, :s, :s, 'team')",
        i=org_id,
        s=slug,
    )
    return org_id


def test_orgs_merge_shows_the_plan_then_merges_with_yes(cli_env: dict[str, str], db) -> None:
    add_org(db, "bob")
    add_org(db, "bob-org")
    plan = run_accord("orgs", "merge", "bob-org", "bob", env=cli_env)
    assert plan.code == 0, plan.stderr
    assert "would merge bob-org into bob" in plan.stdout
    assert "run again with --yes" in plan.stdout

    merged = run_accord("orgs", "merge", "bob-org", "bob", "--yes", "--json", env=cli_env)
    assert merged.code == 0, merged.stderr
    assert merged.json()["applied"] is True
    assert run_sql(db, "SELECT array_agg(slug) FROM organizations") == ["bob"]


def test_import_writes_a_result_per_row_and_a_rerun_changes_nothing(
    cli_env: dict[str, str], db, tmp_path: Path
) -> None:
    org = add_org(db, "acme")
    source = tmp_path / "people.csv"
    source.write_text(
        "email,full_name,role\n"
        "ada@example.com,Ada Lovelace,org_admin\n"
        "not-an-email,Nobody,org_user\n"
        "grace@example.com,Grace Hopper,\n"
    )
    out = tmp_path / "results.jsonl"

    first = run_accord("import", str(source), "--org", org, "--results", str(out), env=cli_env)
    assert first.code == 3, first.stderr  # a row failed: left for a person
    assert "imported 3 rows: created 2, error 1" in first.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["line"], r["status"], r.get("code")) for r in rows] == [
        (2, "created", None),
        (3, "error", "email_invalid"),
        (4, "created", None),
    ]

    again = run_accord("import", str(source), "--org", org, "--json", env=cli_env)
    assert again.code == 3
    assert again.json() == {
        "results": str(source) + ".results.jsonl",
        "rows": 3,
        "exists": 2,
        "error": 1,
    }


def test_doctor_passes_on_a_healthy_installation(cli_env: dict[str, str]) -> None:
    diagnosis = run_accord("doctor", "--json", env=cli_env)
    assert diagnosis.code == 0, diagnosis.stdout + diagnosis.stderr
    body = diagnosis.json()
    assert body["healthy"] is True
    assert [(c["name"], c["ok"]) for c in body["checks"]] == [
        ("configuration", True),
        ("database", True),
        ("migrations", True),
        ("mail", True),  # no SMTP settings: the embedded mailbox
        ("identity provider", True),
    ]

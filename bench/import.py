"""accord import: set-wise (issue 12) against the per-row engine, on the built-in IdP.

    uv run python bench/import.py [--rows 100000] [--baseline-rows 1000] [--batch-size 500]
    uv run python bench/import.py --rows 10000          # what run_all.py --quick runs

A fresh database (bench/reconcile.py's fresh_database, dropped at the end). In one run:
``--baseline-rows`` rows into one organization through the per-row path (``--batch-size 0``,
today's engine, 4 rows at a time), then ``--rows`` rows into another organization set-wise,
then a rerun of the set-wise file (every row must read ``exists``, nothing created). Prints one
JSON object: rows/s of each, the rerun's time and counts, and guarantee-style counts from SQL
afterwards (one user, identity, link, membership, succeeded operation, invitation and
``user.created`` / ``membership.added`` event per row; nothing open, nothing duplicated).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from reconcile import drop_database, fresh_database  # bench/ is on sys.path
from sqlalchemy import text

from accord.adapters.sealing import new_key_text
from accord.bootstrap import Accord, build
from accord.config import Settings
from accord.domain.callers import Caller
from accord.services.importer import import_users
from accord.services.organizations import NewOrganization, create_organization

PLATFORM = Caller.platform("token:bench", "bench@platform.test")

COUNTS = {
    "users": "SELECT count(*) FROM users WHERE status = 'pending'",
    "identities": "SELECT count(*) FROM local_identities",
    "links": "SELECT count(*) FROM idp_links",
    "memberships": "SELECT count(*) FROM memberships",
    "operations_succeeded": "SELECT count(*) FROM operations WHERE state = 'succeeded'",
    "operations_other": "SELECT count(*) FROM operations WHERE state <> 'succeeded'",
    "invitations_queued": "SELECT count(DISTINCT dedupe_key) FROM outbox",
    "events_user_created": "SELECT count(*) FROM change_events WHERE type = 'user.created'",
    "events_membership_added": "SELECT count(*) FROM change_events WHERE type = 'membership.added'",
    "emails_twice": "SELECT count(*) FROM (SELECT email FROM users GROUP BY email "
    "HAVING count(*) > 1) d",
    "over_limit_orgs": "SELECT count(*) FROM organizations o WHERE (SELECT count(*) FROM "
    "memberships m WHERE m.organization_id = o.id) > o.max_users",
    "unlinked_users": "SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM idp_links l "
    "JOIN local_identities i ON i.id = l.remote_id AND i.email = u.email WHERE l.user_id = u.id)",
}


def write(path: Path, org: UUID, rows: int, prefix: str) -> Path:
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["email", "full_name", "organization_id", "role"])
        for n in range(rows):
            out.writerow([f"{prefix}{n}@bench.example", f"{prefix} {n}", str(org), "org_user"])
    return path


async def timed(accord: Accord, source: Path, batch_size: int) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    summary = await import_users(
        accord, source, caller=PLATFORM, batch_size=batch_size, max_users=1
    )
    return time.perf_counter() - started, summary.as_dict()


async def measure(url: str, work: Path, rows: int, baseline: int, batch: int) -> dict[str, Any]:
    settings = Settings(database_url=url, data_dir=work, secret_key=new_key_text())
    accord = build(settings)
    try:
        orgs = []
        for name, size in (("Baseline", baseline), ("Bulk", rows)):
            made = await create_organization(
                accord, NewOrganization(name=name, max_users=size), caller=PLATFORM
            )
            orgs.append(UUID(made["id"]))
        per_row_file = write(work / "per_row.csv", orgs[0], baseline, "old")
        bulk_file = write(work / "bulk.csv", orgs[1], rows, "new")
        per_row_s, per_row = await timed(accord, per_row_file, 0)
        bulk_s, bulk = await timed(accord, bulk_file, batch)
        rerun_s, rerun = await timed(accord, bulk_file, batch)
        async with accord.db.transaction() as conn:
            counts = {k: (await conn.execute(text(q))).scalar() for k, q in COUNTS.items()}
    finally:
        await accord.aclose()
    return {
        "per_row": {
            "rows": baseline,
            "seconds": round(per_row_s, 2),
            "rows_per_s": round(baseline / per_row_s, 1),
            "summary": per_row,
        },
        "set_wise": {
            "rows": rows,
            "batch_size": batch,
            "seconds": round(bulk_s, 2),
            "rows_per_s": round(rows / bulk_s, 1),
            "summary": bulk,
        },
        "speedup": round((rows / bulk_s) / (baseline / per_row_s), 1),
        "rerun": {
            "seconds": round(rerun_s, 2),
            "rows_per_s": round(rows / rerun_s, 1),
            "created": rerun.get("created", 0) + rerun.get("adopted", 0),
            "summary": rerun,
        },
        "counts_after": counts,
        "expected_per_count": rows + baseline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "ACCORD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres"
        ),
        help="a server's maintenance database; a fresh database is made and dropped on it",
    )
    args = parser.parse_args()
    name, url = fresh_database(args.database_url)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"accord-import-{name}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = asyncio.run(measure(url, work, args.rows, args.baseline_rows, args.batch_size))
    finally:
        drop_database(args.database_url, name)
    print(json.dumps({"load_average": os.getloadavg(), **result}))


if __name__ == "__main__":
    main()

"""Reconcile over N users: wall time and peak memory, to show memory does not grow with N.

    uv run python bench/reconcile.py --users 100000 [--drift 0.001] [--database-url URL]
    uv run python bench/reconcile.py --users 1000000

A fresh database gets N linked users and their identities in the local IdP (accord's own,
listed through the adapter page by page like any other), seeded set-wise in SQL so that the
seeding costs this process no memory; then ``--drift`` of them (a fraction) is broken three ways:
identities deleted (orphan rows), links lost (unlinked matches), identities without rows
(foreign IdP users). One dry-run reconcile is timed. Prints one JSON object: wall seconds, peak
RSS of this process (ru_maxrss, which seeding does not touch), RSS before the run, the drift
found. Run each size in its own process (peak RSS is a high-water mark of the process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from accord.adapters.db import migrate
from accord.adapters.db.engine import sync_engine
from accord.adapters.sealing import new_key_text
from accord.bootstrap import build
from accord.config import Settings
from accord.services.reconcile import ReconcileOptions, reconcile

SEED = [
    # users and their identities: ids derived from the row number, so both sides agree
    """INSERT INTO users (id, email, full_name, status)
       SELECT md5('u' || n)::uuid, 'user' || n || '@bench.example', 'User ' || n, 'active'
       FROM generate_series(1, :n) AS n""",
    """INSERT INTO local_identities (id, email, full_name, accord_user_id)
       SELECT md5('u' || n)::uuid::text, 'user' || n || '@bench.example', 'User ' || n,
              md5('u' || n)::uuid::text
       FROM generate_series(1, :n) AS n""",
    """INSERT INTO idp_links (user_id, provider, remote_id, created_by_accord)
       SELECT md5('u' || n)::uuid, 'local', md5('u' || n)::uuid::text, true
       FROM generate_series(1, :n) AS n""",
    # the drift: every k-th user broken one of three ways
    """DELETE FROM local_identities WHERE id IN (
       SELECT md5('u' || n)::uuid::text FROM generate_series(1, :n) AS n WHERE n % :k = 1)""",
    """DELETE FROM idp_links WHERE user_id IN (
       SELECT md5('u' || n)::uuid FROM generate_series(1, :n) AS n WHERE n % :k = 2)""",
    """INSERT INTO local_identities (id, email)
       SELECT md5('f' || n)::uuid::text, 'foreign' || n || '@bench.example'
       FROM generate_series(1, :n) AS n WHERE n % :k = 3""",
    "ANALYZE",
]


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc), in MiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def fresh_database(server_url: str) -> tuple[str, str]:
    name = f"accord_bench_{uuid.uuid4().hex[:8]}"
    admin = sync_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    return name, url


def drop_database(server_url: str, name: str) -> None:
    admin = sync_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def print_measured(
    benchmark: str,
    server_url: str,
    settings: dict[str, Any],
    measure: Callable[[str], Coroutine[Any, Any, dict[str, Any]]],
    *,
    indent: int | None = None,
) -> None:
    """``measure(url)`` on a database of its own (made, migrated, dropped after), printed as
    one JSON object with its settings and the machine's load before and after."""
    load_before = os.getloadavg()
    name, url = fresh_database(server_url)
    try:
        result = asyncio.run(measure(url))
    finally:
        drop_database(server_url, name)
    report = {
        "benchmark": benchmark,
        "settings": settings,
        **result,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(report, indent=indent))


def seed(url: str, users: int, every: int) -> float:
    started = time.perf_counter()
    engine = sync_engine(url)
    with engine.begin() as conn:
        for statement in SEED:
            conn.execute(text(statement), {"n": users, "k": every})
    engine.dispose()
    return round(time.perf_counter() - started, 1)


async def measure(url: str, data_dir: Path) -> dict[str, object]:
    settings = Settings(database_url=url, data_dir=data_dir, secret_key=new_key_text())
    accord = build(settings)
    try:
        before = rss_mb()
        started = time.perf_counter()
        stages: dict[str, float] = {}

        def progress(stage: str, done: int) -> None:  # when each stage last advanced
            stages[stage] = round(time.perf_counter() - started, 1)

        report = await reconcile(accord, ReconcileOptions(), progress=progress, keep=False)
        wall = time.perf_counter() - started
    finally:
        await accord.aclose()
    found = {drift.value: count for drift, count in report.found.items() if count}
    return {
        "wall_seconds": round(wall, 1),
        "stage_ends_at": stages,
        "rss_before_mb": before,
        "found": found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--drift", type=float, default=0.001, help="fraction of users broken")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "ACCORD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres"
        ),
        help="a server's maintenance database; a fresh database is made and dropped on it",
    )
    args = parser.parse_args()
    every = max(4, round(1 / args.drift)) if args.drift > 0 else args.users + 4
    name, url = fresh_database(args.database_url)
    try:
        seconds = seed(url, args.users, every)
        result = asyncio.run(measure(url, Path(os.environ.get("TMPDIR", "/tmp"))))
    finally:
        drop_database(args.database_url, name)
    print(
        json.dumps(
            {
                "users": args.users,
                "seed_seconds": seconds,
                **result,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()

"""Interrupted operations resumed by the workers (issue 12, P4): N left half-done, then timed.

    uv run python bench/p4_resume.py [--quick] [--operations 10000] [--workers 2]
        [--concurrency 16] [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

On a database of its own (made on the server, migrated, dropped at the end), built-in IdP:

1. **Baseline**: ``--operations`` creates (``credential: invite``) run straight through by the
   engine in this process, ``--concurrency`` at once: what the same work costs uninterrupted.
2. **Interrupted**: as many again, into another organization, each stopped at a crash point of
   the engine's own phases: half right after the claim committed (``after_claim``), half after
   the IdP answered and before the recovery point was written (``idp_answered``: the identity
   exists, the row does not know it). Instead of a SIGKILL per operation (what
   ``tests/crash`` does, one process each: far too slow for 10,000), ``crashpoints.reach``
   raises here at the chosen point and the call is abandoned: what the database holds is the
   same, an open operation with its lease running.
3. ``--workers`` ``accord worker`` processes start with a poll interval of 600 s (so only a
   wake-up, never a poll, can start them working) and are left until they are ready. Then
   one transaction moves every lease into the past (the crashed process's leases ran out) and
   sends the work notice a lease expiry would otherwise leave to the workers' timers; the clock
   starts at its commit and stops when no operation is open (this process counts every 0.1 s).

Checks: every interrupted operation ``succeeded``, one user, one link, one membership each,
no open operation, and ``tests/guarantees.py`` on the whole database. Prints one JSON object:
resume seconds and ops/s, the baseline's, their ratio, the 20 s target for 10,000 (scaled to
``--operations``), how long setting up took, the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconcile import drop_database, fresh_database  # bench/ is on sys.path

from accord.adapters.sealing import new_key_text
from accord.bootstrap import Accord, build
from accord.config import Settings
from accord.domain.callers import Caller
from accord.domain.model import CredentialMode
from accord.services import crashpoints
from accord.services.crashpoints import CrashPoint
from accord.services.organizations import NewOrganization, create_organization
from accord.services.provisioning import NewUser, create_user

PLATFORM = Caller.platform("bench", "bench@platform.test")
SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_SECONDS_PER_10K = 20.0
POINTS = (CrashPoint.AFTER_CLAIM, CrashPoint.IDP_ANSWERED)

_stop_at: contextvars.ContextVar[CrashPoint | None] = contextvars.ContextVar(
    "stop_at", default=None
)


class Interrupted(BaseException):
    """The stand-in for SIGKILL: nothing in accord catches a BaseException that is not its own."""


def _reach(settings: Any, point: CrashPoint) -> None:
    if _stop_at.get() == point:
        raise Interrupted(point)


async def bounded(calls: list[Callable[[], Awaitable[None]]], concurrency: int) -> float:
    """Run ``calls`` ``concurrency`` at a time; the seconds it took."""
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(one(call) for call in calls))
    return time.perf_counter() - started


async def new_org(accord: Accord, name: str, seats: int) -> UUID:
    org = await create_organization(
        accord, NewOrganization(name=name, max_users=seats), caller=PLATFORM
    )
    return UUID(org["id"])


def create(accord: Accord, org: UUID, email: str, point: CrashPoint | None) -> Any:
    async def call() -> None:
        _stop_at.set(point)  # this task's own copy of the context
        request = NewUser(email, "Bench User", org, credential=CredentialMode.INVITE)
        with contextlib.suppress(Interrupted):
            await create_user(accord, request, caller=PLATFORM, idempotency_key=email)

    return call


async def scalar(accord: Accord, sql: str) -> Any:
    async with accord.db.transaction() as conn:
        return (await conn.execute(text(sql))).scalar()


async def prepare(accord: Accord, n: int, concurrency: int, baseline: bool) -> dict[str, Any]:
    """The baseline run, then the interrupted operations; their timings."""
    seats = n + 10
    straight = await new_org(accord, "Straight", seats)
    calls = [create(accord, straight, f"s{i}@bench.example", None) for i in range(n)]
    took = await bounded(calls if baseline else [], concurrency)
    interrupted = await new_org(accord, "Interrupted", seats)
    calls = [create(accord, interrupted, f"i{i}@bench.example", POINTS[i % 2]) for i in range(n)]
    setup = await bounded(calls, concurrency)
    return {
        "baseline_seconds": took if baseline else None,
        "setup_seconds": setup,
        "org": interrupted,
    }


def start_workers(settings_env: dict[str, str], count: int) -> list[subprocess.Popen[str]]:
    accord_cli = str(Path(sys.executable).parent / "accord")
    env = {**os.environ, **settings_env}
    workers = [
        subprocess.Popen(
            [accord_cli, "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    for worker in workers:  # ready once it says so (its imports and first pass done)
        assert worker.stderr is not None
        line = worker.stderr.readline()
        if "running" not in line:
            raise RuntimeError(f"the worker did not start: {line}{worker.stderr.read()}")
    return workers


def stop_workers(workers: list[subprocess.Popen[str]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(timeout=120)


async def resume(accord: Accord, deadline: float) -> float:
    """Expire the leases (with the work notice), then wait until nothing is open."""
    async with accord.db.transaction() as conn:
        await conn.execute(
            text("UPDATE operations SET lease_until = now() - interval '1 s' WHERE state = 'open'")
        )
        await conn.execute(text("SELECT pg_notify('accord_work', '')"))
    started = time.perf_counter()
    while await scalar(accord, "SELECT count(*) FROM operations WHERE state = 'open'"):
        if time.perf_counter() - started > deadline:
            raise TimeoutError(f"operations still open after {deadline} s")
        await asyncio.sleep(0.1)  # measuring, not synchronizing: the resolution of the figure
    return time.perf_counter() - started


async def checks(accord: Accord, org: UUID, n: int) -> dict[str, Any]:
    states = {}
    async with accord.db.transaction() as conn:
        rows = await conn.execute(
            text(
                "SELECT state, count(*) FROM operations "
                "WHERE organization_id = :org AND kind = 'create_user' GROUP BY state"
            ),
            {"org": org},
        )
        states = {state: count for state, count in rows}
        members = (
            await conn.execute(
                text("SELECT count(*) FROM memberships WHERE organization_id = :org"),
                {"org": org},
            )
        ).scalar()
    try:
        from tests.guarantees import assert_guarantees

        await assert_guarantees(accord)
        guarantees = "ok"
    except AssertionError as broken:
        guarantees = f"broken: {str(broken)[:300]}"
    ok = states == {"succeeded": n} and members == n and guarantees == "ok"
    return {"states": states, "members": members, "guarantees": guarantees, "all_finished": ok}


async def measure(url: str, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    key = new_key_text()
    settings = Settings(database_url=url, data_dir=data_dir, secret_key=key)
    crashpoints.reach = _reach  # this process only: the workers run accord unchanged
    accord = build(settings)
    try:
        prepared = await prepare(accord, args.operations, args.concurrency, args.baseline)
        leased = await scalar(
            accord, "SELECT count(*) FROM operations WHERE state = 'open' AND lease_until > now()"
        )
        env = {
            "ACCORD_DATABASE_URL": url,
            "ACCORD_SECRET_KEY": key,
            "ACCORD_DATA_DIR": str(data_dir),
            "ACCORD_IDP": "local",
            "ACCORD_WORKER_POLL_SECONDS": str(args.poll),
        }
        workers = start_workers(env, args.workers)
        try:
            seconds = await resume(accord, deadline=args.deadline)
        finally:
            stop_workers(workers)
        verified = await checks(accord, prepared["org"], args.operations)
    finally:
        await accord.aclose()
    n, baseline = args.operations, prepared["baseline_seconds"]
    target = TARGET_SECONDS_PER_10K * n / 10_000
    return {
        "left_leased": leased,
        "resume_seconds": round(seconds, 2),
        "resume_ops_per_s": round(n / seconds, 1),
        "baseline_seconds": round(baseline, 2) if baseline else None,
        "baseline_ops_per_s": round(n / baseline, 1) if baseline else None,
        "resume_over_baseline": round(seconds / baseline, 3) if baseline else None,
        "target_seconds": target,
        "meets_target": seconds <= target,
        "setup_seconds": round(prepared["setup_seconds"], 1),
        **verified,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 operations")
    parser.add_argument("--operations", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="accord worker processes")
    parser.add_argument("--concurrency", type=int, default=16, help="of the baseline and setup")
    parser.add_argument(
        "--poll", type=float, default=600.0, help="the workers' poll interval (s): 1 on main"
    )
    parser.add_argument(
        "--no-baseline", dest="baseline", action="store_false", help="resume only (profiling)"
    )
    parser.add_argument("--deadline", type=float, default=900.0, help="give up after (s)")
    parser.add_argument("--database-url", default=os.environ.get("ACCORD_TEST_SERVER", SERVER))
    args = parser.parse_args()
    if args.quick:
        args.operations = 1_000
    load_before = [round(x, 2) for x in os.getloadavg()]
    name, url = fresh_database(args.database_url)
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            result = asyncio.run(measure(url, args, Path(data_dir)))
    finally:
        drop_database(args.database_url, name)
    report = {
        "operations": args.operations,
        "interrupted_at": {str(p): args.operations // 2 for p in POINTS},
        "workers": args.workers,
        "poll_seconds": args.poll,
        "idp": "local",
        **result,
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()

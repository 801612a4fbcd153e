"""The change feed's cost on the P1 create path: creates with and without event writing, same run.

    uv run python bench/event_overhead.py [--quick] [--creates 400] [--concurrency 16]
        [--repeat 5] [--orgs 8] [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

In one process, on a database of its own (made on the server, migrated, dropped at the end),
with the built-in IdP: ``create_user`` (``credential: invite``, a platform caller, a new e-mail
each, the organizations taken in turn) at ``--concurrency`` at once, ``--creates`` per round.
The rounds alternate between accord as it is (each audited change also reads its subject,
grows its version and appends its feed event, ``domain/changes.py``) and the same accord whose
transactions record the audit event only (``ChangeRecorder`` taken out), so both variants see
the same machine load. The feed assigner runs after each "with" round, outside the timing, as
the worker does.

Prints one JSON object: each variant's creates/s and p50/p99 latency (medians over the
rounds), ``overhead_percent`` (how much slower creates are with events) and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconcile import drop_database, fresh_database  # bench/ is on sys.path

from accord.adapters.sealing import new_key_text
from accord.bootstrap import Accord, build
from accord.config import Settings
from accord.domain.callers import Caller
from accord.domain.changes import ChangeRecorder
from accord.domain.model import CredentialMode
from accord.domain.store import Store, Transaction
from accord.services.events import assign_positions
from accord.services.organizations import NewOrganization, create_organization
from accord.services.provisioning import NewUser, create_user

PLATFORM = Caller.platform("bench", "bench@platform.test")
FIGURES = (
    "creates_per_second",
    "p50_ms",
    "p99_ms",
    "cpu_ms_per_create",
    "client_cpu_ms_per_create",
    "server_cpu_ms_per_create",
)
SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


class AuditOnly:
    """The store with ``tx.audit`` back to the bare audit log: no feed event is written."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._store.transaction() as tx:
            if isinstance(tx.audit, ChangeRecorder):
                tx.audit = tx.audit._audit  # type: ignore[misc]  # the bench's one shortcut
            yield tx

    def drift_session(self, provider: str) -> Any:
        return self._store.drift_session(provider)


async def backend_pids(accord: Accord) -> set[int]:
    """The server processes serving this database (the pool's connections)."""
    async with accord.db.transaction() as conn:
        found = await conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        )
        return {int(pid) for pid in found.scalars()}


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU the processes used so far (Linux ``/proc``; gone ones count 0)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


async def round_of(
    accord: Accord, orgs: list[uuid.UUID], creates: int, concurrency: int
) -> dict[str, float]:
    """``creates`` creates, ``concurrency`` at a time: creates/s, p50 and p99 in ms, and the
    CPU each create cost this process and the database server's backends."""
    latencies: list[float] = []
    todo = iter(range(creates))
    pids = await backend_pids(accord)
    client_before, server_before = time.process_time(), cpu_seconds(pids)

    async def one_worker() -> None:
        for n in todo:
            email = f"{uuid.uuid4().hex[:12]}@example.com"
            started = time.perf_counter()
            await create_user(
                accord,
                NewUser(email, "Bench User", orgs[n % len(orgs)], credential=CredentialMode.INVITE),
                caller=PLATFORM,
            )
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one_worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    client = time.process_time() - client_before
    # A connection opened during the round counts whole: it began at 0.
    server = cpu_seconds(pids | await backend_pids(accord)) - server_before
    latencies.sort()
    return {
        "cpu_ms_per_create": 1000 * (client + server) / creates,
        "client_cpu_ms_per_create": 1000 * client / creates,
        "server_cpu_ms_per_create": 1000 * server / creates,
        "creates_per_second": creates / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(
        database_url=url,
        data_dir=Path(tempfile.mkdtemp(prefix="accord-bench-")),
        secret_key=new_key_text(),
        idp="local",
        database_pool_size=max(10, args.concurrency),
    )
    accord = build(settings)
    try:
        orgs = []
        for i in range(args.orgs):
            request = NewOrganization(name=f"Bench {i}", max_users=100_000)
            made = await create_organization(accord, request, caller=PLATFORM)
            orgs.append(uuid.UUID(made["id"]))
        plain = AuditOnly(accord.store)
        with_events = accord.store
        await round_of(accord, orgs, max(20, args.concurrency), args.concurrency)  # warm-up
        rounds: dict[str, list[dict[str, float]]] = {"with_events": [], "without_events": []}
        for _ in range(args.repeat):
            for variant, store in (("with_events", with_events), ("without_events", plain)):
                accord.store = store  # type: ignore[assignment]
                rounds[variant].append(await round_of(accord, orgs, args.creates, args.concurrency))
                accord.store = with_events
                await assign_positions(accord)  # the worker's share, outside the timing
        summary = {
            variant: {key: round(statistics.median(r[key] for r in results), 2) for key in FIGURES}
            for variant, results in rounds.items()
        }
        async with accord.db.transaction() as conn:
            events = (await conn.execute(text("SELECT count(*) FROM change_events"))).scalar()
        rate_with = summary["with_events"]["creates_per_second"]
        rate_without = summary["without_events"]["creates_per_second"]
        cpu_with = summary["with_events"]["cpu_ms_per_create"]
        cpu_without = summary["without_events"]["cpu_ms_per_create"]
        return {
            **summary,
            "overhead_percent": round(100 * (rate_without / rate_with - 1), 2),
            "cpu_overhead_percent": round(100 * (cpu_with / cpu_without - 1), 2),
            "events_written": events,
        }
    finally:
        await accord.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short: 120 creates, 3 rounds")
    parser.add_argument("--creates", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--orgs", type=int, default=8)
    parser.add_argument("--database-url", default=os.environ.get("ACCORD_BENCH_SERVER", SERVER))
    args = parser.parse_args()
    if args.quick:
        args.creates, args.repeat = 120, 3
    load_before = os.getloadavg()
    name, url = fresh_database(args.database_url)
    try:
        result = asyncio.run(measure(url, args))
    finally:
        drop_database(args.database_url, name)
    settings = {k: getattr(args, k) for k in ("creates", "concurrency", "repeat", "orgs")}
    print(
        json.dumps(
            {
                "benchmark": "event_overhead",
                "settings": settings,
                **result,
                "load_before": [round(x, 2) for x in load_before],
                "load_after": [round(x, 2) for x in os.getloadavg()],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

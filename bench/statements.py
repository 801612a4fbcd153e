"""Statements and transactions per create, and where a create's Python CPU goes (issue 12).

    uv run python bench/statements.py [--creates 200] [--top 15] [--profile FILE]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

In one process, on a database of its own (made, migrated, dropped at the end), with the
built-in IdP: ``create_user`` (``credential: invite``, a platform caller, a new e-mail each)
one at a time. After 20 warm-up creates, one create is counted: its statements at psycopg's
cursor, so those SQLAlchemy runs and those run on psycopg directly (``adapters/db/direct.py``)
alike, and the transactions they make up there (``BEGIN`` ... ``COMMIT``, and the statements
that run alone, in autocommit: the work notice's ``NOTIFY``, sent on a connection of its own
after the commit, among them; creates one after another leave no connection idle long enough
to be pinged), then ``--rounds`` rounds of
``--creates`` creates timed on the process's CPU clock without a profiler
(``cpu_ms_per_create``: the median round; the figure to compare between checkouts, steadier
than throughput on a shared machine), then ``--creates`` more under cProfile.

Prints one JSON object: the counts, the statements' first lines, the CPU per create under the
profiler (inflated by it: compare runs of this script, not with event_overhead.py), the
Python function calls per create and the ``--top`` frames by own CPU time.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import functools
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from psycopg import AsyncCursor
from psycopg.pq import TransactionStatus

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconcile import print_measured  # bench/ is on sys.path

from accord.adapters.sealing import new_key_text
from accord.bootstrap import build
from accord.config import Settings
from accord.domain.callers import Caller
from accord.domain.model import CredentialMode
from accord.services.organizations import NewOrganization, create_organization
from accord.services.provisioning import NewUser, create_user

PLATFORM = Caller.platform("bench", "bench@platform.test")


@contextmanager
def captured_statements(
    units: collections.Counter[str] | None = None,
) -> Iterator[list[tuple[str, Any]]]:
    """Every statement psycopg's cursors execute meanwhile, with its parameters: those
    SQLAlchemy runs and those run on psycopg directly (``adapters/db/direct.py``) alike.
    ``units`` counts the ``transactions`` (``BEGIN`` ... ``COMMIT``) and the
    ``statements_alone`` (autocommit) they make up."""
    captured: list[tuple[str, Any]] = []
    execute, executemany = AsyncCursor.execute, AsyncCursor.executemany

    def count(cursor: AsyncCursor[Any]) -> None:
        if units is None:
            return
        conn = cursor.connection
        if conn.autocommit:
            units["statements_alone"] += 1  # a transaction by itself: no BEGIN, no COMMIT
        elif conn.info.transaction_status == TransactionStatus.IDLE:
            units["transactions"] += 1  # psycopg sends BEGIN before this one

    async def executed(cursor: AsyncCursor[Any], query: Any, params: Any = None, **kw: Any) -> Any:
        captured.append((str(query), params))
        count(cursor)
        return await execute(cursor, query, params, **kw)

    async def executed_many(cursor: AsyncCursor[Any], query: Any, params: Any, **kw: Any) -> Any:
        params = list(params)  # one statement however many sets, kept with its first set
        captured.append((str(query), params[0] if params else None))
        count(cursor)
        return await executemany(cursor, query, params, **kw)

    AsyncCursor.execute = executed  # type: ignore[method-assign]
    AsyncCursor.executemany = executed_many  # type: ignore[method-assign]
    try:
        yield captured
    finally:
        AsyncCursor.execute, AsyncCursor.executemany = execute, executemany  # type: ignore[method-assign]


SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(
        database_url=url,
        data_dir=Path(tempfile.mkdtemp(prefix="accord-bench-")),
        secret_key=new_key_text(),
        idp="local",
    )
    accord = build(settings)
    try:
        made = await create_organization(
            accord, NewOrganization(name="Bench", max_users=100_000), caller=PLATFORM
        )
        org = uuid.UUID(made["id"])

        async def one() -> None:
            email = f"{uuid.uuid4().hex[:12]}@example.com"
            request = NewUser(email, "Bench User", org, credential=CredentialMode.INVITE)
            await create_user(accord, request, caller=PLATFORM)

        for _ in range(20):
            await one()
        units: collections.Counter[str] = collections.Counter()
        with captured_statements(units) as captured:
            await one()
            await accord.store.aclose()  # the work notice sent, and counted
        statements = [" ".join(query.split())[:100] for query, _ in captured]

        rounds = []  # without the profiler: the figure to compare between checkouts
        for _ in range(args.rounds):
            started = time.process_time()
            for _ in range(args.creates):
                await one()
            rounds.append(1000 * (time.process_time() - started) / args.creates)

        profile = cProfile.Profile(time.process_time)
        started = time.process_time()
        profile.enable()
        for _ in range(args.creates):
            await one()
        profile.disable()
        cpu = time.process_time() - started
        if args.profile:
            profile.dump_stats(args.profile)
        stats = pstats.Stats(profile)
        calls = sum(v[1] for v in stats.stats.values())  # type: ignore[attr-defined]
        frames = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
        top = [
            {
                "frame": f"{Path(file).name}:{line}({name})",
                "own_ms_per_create": round(1000 * v[2] / args.creates, 3),
                "calls_per_create": round(v[1] / args.creates, 1),
            }
            for (file, line, name), v in frames[: args.top]
        ]
        return {
            "transactions_per_create": units["transactions"],
            "statements_alone_per_create": units["statements_alone"],
            "statements_per_create": len(statements),
            "statements": statements,
            "cpu_ms_per_create": round(statistics.median(rounds), 3),
            "cpu_ms_per_create_rounds": [round(r, 3) for r in rounds],
            "profiled_cpu_ms_per_create": round(1000 * cpu / args.creates, 2),
            "function_calls_per_create": round(calls / args.creates),
            "top_frames": top,
        }
    finally:
        await accord.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3, help="unprofiled rounds of --creates")
    parser.add_argument("--profile", help="also write the cProfile stats to this file")
    parser.add_argument("--database-url", default=os.environ.get("ACCORD_BENCH_SERVER", SERVER))
    args = parser.parse_args()
    settings = {"creates": args.creates, "rounds": args.rounds}
    run = functools.partial(measure, args=args)
    print_measured("statements", args.database_url, settings, run, indent=2)


if __name__ == "__main__":
    main()

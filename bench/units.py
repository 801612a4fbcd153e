"""CPU per unit of work: a statement alone and a transaction, against bare psycopg (issue 12).

    uv run python bench/units.py [--units 3000] [--rounds 3]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

In one process, on a database of its own (made, migrated, dropped at the end): ``--rounds``
rounds of ``--units`` units one after another, each on the process's CPU clock, of

- ``statement``: ``Store.statement()`` and one ``Direct`` statement in it (an API token's
  look-up by digest, as every request makes: an index look-up that finds nothing);
- ``transaction``: ``Store.transaction()`` with the same statement;
- ``psycopg_statement`` / ``psycopg_transaction``: the same SQL text on one psycopg connection
  held for the whole run (autocommit; a ``BEGIN`` ... ``COMMIT`` around it for the second): the
  floor, what the statement costs with no pool and no unit around it.

Prints one JSON object: microseconds of CPU per unit (the median round, and every round) and
each unit's ratio over its floor, measured in the same run.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import bindparam, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconcile import print_measured  # bench/ is on sys.path

from accord.adapters.db.direct import Direct
from accord.adapters.db.tables import api_tokens
from accord.adapters.sealing import new_key_text
from accord.bootstrap import build
from accord.config import Settings

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DIGEST = "0" * 64  # no token has it
LOOKUP = Direct(select(api_tokens.c.id).where(api_tokens.c.digest == bindparam("digest")))


async def rounds_of(unit: Callable[[], Awaitable[Any]], args: argparse.Namespace) -> list[float]:
    for _ in range(args.units // 10):  # warm: pools filled, statements prepared
        await unit()
    found = []
    for _ in range(args.rounds):
        started = time.process_time()
        for _ in range(args.units):
            await unit()
        found.append(1e6 * (time.process_time() - started) / args.units)
    return found


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(
        database_url=url,
        data_dir=Path(tempfile.mkdtemp(prefix="accord-bench-")),
        secret_key=new_key_text(),
    )
    accord = build(settings)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    bare = await psycopg.AsyncConnection.connect(conninfo, autocommit=True, row_factory=dict_row)
    sql = str(LOOKUP.statement.compile(dialect=accord.db.engine.dialect))
    params = {"digest": DIGEST}

    async def statement() -> None:
        async with accord.store.statement() as tx:
            await LOOKUP.first(tx.connection, params)

    async def transaction() -> None:
        async with accord.store.transaction() as tx:
            await LOOKUP.first(tx.connection, params)

    async def psycopg_statement() -> None:
        async with bare.cursor() as cursor:
            await cursor.execute(sql, params)
            await cursor.fetchone()

    async def psycopg_transaction() -> None:
        async with bare.transaction(), bare.cursor() as cursor:
            await cursor.execute(sql, params)
            await cursor.fetchone()

    try:
        units = {
            "statement": statement,
            "transaction": transaction,
            "psycopg_statement": psycopg_statement,
            "psycopg_transaction": psycopg_transaction,
        }
        found = {name: await rounds_of(unit, args) for name, unit in units.items()}
    finally:
        await bare.close()
        await accord.aclose()
    median = {name: statistics.median(r) for name, r in found.items()}
    return {
        "cpu_us_per_unit": {name: round(m, 1) for name, m in median.items()},
        "rounds_us": {name: [round(r, 1) for r in rs] for name, rs in found.items()},
        "over_psycopg": {
            "statement": round(median["statement"] / median["psycopg_statement"], 2),
            "transaction": round(median["transaction"] / median["psycopg_transaction"], 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("ACCORD_BENCH_SERVER", SERVER))
    args = parser.parse_args()
    settings = {"units": args.units, "rounds": args.rounds}
    print_measured("units", args.database_url, settings, functools.partial(measure, args=args))


if __name__ == "__main__":
    main()

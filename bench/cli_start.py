"""Start-up of the ``accord`` command line: wall time of ``accord --help`` and of one database
command, against what every command paid before the CLI imported lazily.

    uv run python bench/cli_start.py [--runs 7] [--database-url URL]

A scratch database is made on the server, migrated with ``accord db upgrade``, given one user
(``accord register``), and dropped at the end. Each run starts a fresh process of:

- ``help``: the console script, ``accord --help``;
- ``users_list``: ``accord users list --limit 1`` against the scratch database;
- ``import_cli``: ``python -c "import accord.entrypoints.cli"``;
- ``baseline``: ``python -c "import sqlalchemy, alembic, accord.bootstrap"``, which the old CLI
  (cli.py importing migrations, bootstrap and settings at load) paid before any command ran.

The four alternate within each round, so load on the machine falls on all of them alike. Two
ways Python starts are measured: ``compiled``, as this machine is set up (PYTHONDONTWRITEBYTECODE=1:
nothing is cached, so every start compiles the project's and its dependencies' modules; only the
standard library's bytecode ships with Python), and ``cached``, as an installed program usually
runs: bytecode written by a warm-up round into a scratch PYTHONPYCACHEPREFIX, then read.

Prints one JSON object: median, min and max seconds per command and mode, the ratios, the targets
(help <= 0.5 s, users_list <= 1.5 s), and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

TARGETS = {"help": 0.5, "users_list": 1.5}
PYTHON = sys.executable
ACCORD = str(Path(sys.executable).parent / "accord")
COMMANDS = {
    "help": [ACCORD, "--help"],
    "users_list": [ACCORD, "users", "list", "--limit", "1"],
    "import_cli": [PYTHON, "-c", "import accord.entrypoints.cli"],
    "baseline": [PYTHON, "-c", "import sqlalchemy, alembic, accord.bootstrap"],
}


def with_database(server_url: str, name: str) -> str:
    """``server_url`` naming the database ``name`` instead."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def admin(server_url: str, statement: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(statement)


def run(command: list[str], env: dict[str, str]) -> float:
    """Seconds from starting ``command`` to its exit; it must succeed."""
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def summary(seconds: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(seconds), 3),
        "min": round(min(seconds), 3),
        "max": round(max(seconds), 3),
    }


def warm_up(env: dict[str, str]) -> None:
    """One untimed start of every command, side by side: it fills the page cache and, cached,
    writes the bytecode (each module file is written whole and renamed into place, so
    concurrent writers do not mix); none of the timed runs shares the CPU."""
    with ThreadPoolExecutor(len(COMMANDS)) as pool:
        list(pool.map(lambda command: run(command, env), COMMANDS.values()))


def measure(runs: int, env: dict[str, str]) -> dict[str, dict[str, float]]:
    """``runs`` rounds of every command, alternating, one at a time, after a warm-up round."""
    warm_up(env)
    seconds: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, command in COMMANDS.items():
            seconds[name].append(run(command, env))
    return {name: summary(values) for name, values in seconds.items()}


def ratios(result: dict[str, dict[str, float]]) -> dict[str, float]:
    median = {name: values["median"] for name, values in result.items()}
    return {
        "baseline_over_help": round(median["baseline"] / median["help"], 1),
        "baseline_over_import_cli": round(median["baseline"] / median["import_cli"], 1),
        "users_list_over_baseline": round(median["users_list"] / median["baseline"], 2),
    }


def mode_env(base: dict[str, str], pycache: Path | None) -> dict[str, str]:
    """``base`` with bytecode cached in ``pycache``, or (None) never written."""
    env = {
        k: v for k, v in base.items() if k not in ("PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE")
    }
    if pycache is None:
        return {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    return {**env, "PYTHONPYCACHEPREFIX": str(pycache)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "ACCORD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a server's maintenance database; a scratch database is made and dropped on it",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    name = f"accord_bench_cli_{uuid.uuid4().hex[:8]}"
    admin(args.database_url, f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory() as scratch:
            base = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
            base |= {
                "ACCORD_DATABASE_URL": with_database(args.database_url, name),
                "ACCORD_DATA_DIR": scratch,
            }
            run([ACCORD, "db", "upgrade"], base)
            register = ["register", "bench@example.com", "--password", "correct horse battery"]
            register += ["--verified"]  # one user at once, no verification link
            run([ACCORD, *register, "--name", "Bench"], base)
            results = {}
            for mode, pycache in (("compiled", None), ("cached", Path(scratch) / "pycache")):
                env = mode_env(base, pycache)
                measured = measure(args.runs, env)
                within = {k: measured[k]["median"] <= limit for k, limit in TARGETS.items()}
                results[mode] = {
                    "seconds": measured,
                    "ratios": ratios(measured),
                    "within_targets": within,
                }
    finally:
        admin(args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(
        json.dumps(
            {
                "runs": args.runs,
                "targets_s": TARGETS,
                **results,
                "load_before": [round(x, 2) for x in load_before],
                "load_after": [round(x, 2) for x in os.getloadavg()],
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()

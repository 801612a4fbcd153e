"""Every benchmark in bench/, one after another, as one JSON object.

    uv run python bench/run_all.py [--quick] [--only p1_create,cli_start]

``--quick`` runs each with short settings (see
bench/README.md); without it, with the settings its README section describes. Benchmarks
run in turn, never side by side: each measures its own baseline and must not share the CPU
with another. A benchmark that fails is
reported under ``failed`` (with the end of its stderr); the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
HELPERS = {"run_all", "skeleton", "wrk", "profile_p1"}  # modules here that are not benchmarks

# name: (quick arguments, full arguments). A benchmark added without an entry runs with
# ``--quick`` under --quick and with no arguments otherwise.
ARGUMENTS: dict[str, tuple[list[str], list[str]]] = {
    "p1_create": (["--quick"], []),
    "cli_start": (["--runs", "1"], []),
    "reconcile": (["--users", "10000"], ["--users", "100000"]),
    "soak": (["--operations", "50"], ["--operations", "10000"]),
    "email_faults": (["--users", "50"], ["--users", "1000"]),
    "webhook_delivery": (["--quick"], []),
    # 32 a round (two waves of 16), not --quick's 48: the library default hashes some 6 a
    # second, most of this benchmark's time; the two variants differ 4-fold.
    "registration": (["--registrations", "32", "--repeat", "2"], []),
    "p4_resume": (["--operations", "500"], ["--operations", "10000"]),
    # 64 connections, not 200: accord answers some 25 creates/s here, so 200 connections
    # would need over 8 s a run to get more answers than connections (too_short otherwise).
    "p3_latency": (["--seconds", "6", "--repeat", "1", "--concurrency", "64"], []),
    "statements": (["--creates", "30", "--rounds", "1"], []),
    "p2_scale": (["--users", "20000", "--creates", "15", "--rounds", "3"], []),
    "import": (["--rows", "5000", "--baseline-rows", "200"], []),
    "mail_cpu": (["--mails", "100"], []),
    "units": (["--units", "500", "--rounds", "1"], []),
}
ORDER = ["p1_create", "reconcile", "cli_start", "soak", "p4_resume"]


def benchmarks(only: list[str] | None = None) -> list[str]:
    """The benchmarks present in bench/, known ones first, in ORDER."""
    present = {p.stem for p in BENCH.glob("*.py")} - HELPERS
    names = [n for n in ORDER if n in present] + sorted(present - set(ORDER))
    return [n for n in names if only is None or n in only]


def arguments(name: str, quick: bool) -> list[str]:
    quick_args, full_args = ARGUMENTS.get(name, (["--quick"], []))
    return quick_args if quick else full_args


def last_json_object(stdout: str) -> Any:
    """The JSON object a benchmark printed (the last one, should it print more)."""
    start = stdout.rfind("\n{") + 1 if not stdout.startswith("{") else 0
    return json.loads(stdout[start:])


def child_env(pycache: str) -> dict[str, str]:
    """This environment, with bytecode written to and read from ``pycache``.

    The machine sets PYTHONDONTWRITEBYTECODE=1, so without a cache every process a benchmark
    starts (servers, emulators, ``accord db upgrade``...) compiles every module it imports
    from source, some 2 s each. No benchmark times a process start but cli_start.py, which
    sets both variables itself for each of its modes."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return env | {"PYTHONPYCACHEPREFIX": pycache}


def run_one(
    name: str, quick: bool, env: dict[str, str]
) -> tuple[dict[str, Any] | None, str, float]:
    started = time.perf_counter()
    command = [sys.executable, str(BENCH / f"{name}.py"), *arguments(name, quick)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = round(time.perf_counter() - started, 1)
    try:
        return last_json_object(done.stdout), done.stderr, seconds
    except ValueError:
        return None, f"exit {done.returncode}: {done.stderr[-3000:]}", seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated names, e.g. p1_create,cli_start")
    args = parser.parse_args()
    report: dict[str, Any] = {"quick": args.quick, "cpus": os.cpu_count()}
    report["load_before"] = [round(x, 2) for x in os.getloadavg()]
    results: dict[str, Any] = {}
    failed: dict[str, str] = {}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="accord-bench-pycache-") as pycache:
        env = child_env(pycache)  # shared by the benchmarks, removed at the end
        for name in benchmarks(args.only.split(",") if args.only else None):
            print(f"running {name} ...", file=sys.stderr)
            result, stderr, seconds[name] = run_one(name, args.quick, env)
            if result is None:
                failed[name] = stderr
            else:
                results[name] = result
    report |= {"seconds": seconds, "total_seconds": round(sum(seconds.values()), 1)}
    report |= {"load_after": [round(x, 2) for x in os.getloadavg()], "results": results}
    if failed:
        report["failed"] = failed
    print(json.dumps(report, indent=2))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

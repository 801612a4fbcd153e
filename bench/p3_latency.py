"""P3: creates against a slow IdP. Does a 200 ms identity provider leave throughput where the CPU
puts it, or does something (a lock, a pool slot, a connection limit) wait through the IdP calls?

    uv run python bench/p3_latency.py [--quick] [--seconds 20] [--repeat 2] [--latency-ms 200]
        [--concurrency 200] [--accord LABEL=CHECKOUT ...]

Each server (``accord serve`` and ``bench/skeleton.py``, as in p1_create.py) gets a Keycloak
emulator of its own in its own process. wrk sends creates at ``--concurrency`` connections twice
per repeat: with the emulator answering at once, and with every emulator request delayed by
``--latency-ms`` (``PUT /__faults {"latency_ms": ...}``). A create makes 4 Keycloak calls in
sequence (search by e-mail, create, read back, credential), so one create waits at least 4 times the
latency, and C connections can at most make ``C / (4 * latency)`` creates/s.

Prints one JSON object: per server and latency the creates/s, p50 and p99 (medians over the
repeats), and the ratios that say where the time went:

- ``slow/fast``: throughput at the latency over throughput at 0 ms, same server, same run. Near 1
  means the latency is hidden by concurrency (nothing is held across an IdP call); well below 1
  with the bound not reached means something serializes the waits.
- ``over_bound``: throughput at the latency over ``C / (4 * latency)``, the most the wait allows.
- ``over_issue_target``: over the issue's ``C / latency`` (it counts one IdP round trip per create).
- ``accord/skeleton``: at the latency, against the skeleton's same 4 calls without logic.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import p1_create
from tests.mailbox import Inbox, SmtpServer, free_port

IDP_CALLS_PER_CREATE = 4  # search, create, read back, credential (see bench/skeleton.py)
FIGURES = ("creates_per_s", "p50_ms", "p99_ms")


def set_latency(emulator_url: str, latency_ms: float) -> None:
    httpx.put(f"{emulator_url}/__faults", json={"latency_ms": latency_ms}, timeout=10)


def summarize(runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    cases: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        cases.setdefault(f"{run['server']} latency={run['latency_ms']:g}ms", []).append(run)
    table: dict[str, Any] = {}
    for name, group in cases.items():
        case = {f: round(statistics.median(r[f] for r in group), 1) for f in FIGURES}
        case |= {c: sum(r[c] for r in group) for c in ("created", "pending", "other", "timeouts")}
        # As in wrk.medians: fewer answers than connections, and creates/s is a floor.
        case["too_short"] = case["created"] < args.concurrency * len(group)
        table[name] = case
    bound = args.concurrency / (IDP_CALLS_PER_CREATE * args.latency_ms / 1000)
    issue_target = args.concurrency / (args.latency_ms / 1000)
    ratios: dict[str, float | None] = {}
    servers = ["skeleton"] + [label for label, _ in args.accord]
    for server in servers:
        slow = table[f"{server} latency={args.latency_ms:g}ms"]["creates_per_s"]
        fast = table[f"{server} latency=0ms"]["creates_per_s"]
        ratios[f"{server} slow/fast"] = round(slow / fast, 3) if fast else None
        ratios[f"{server} over_bound"] = round(slow / bound, 3)
        ratios[f"{server} over_issue_target"] = round(slow / issue_target, 3)
        if server != "skeleton":
            base = table[f"skeleton latency={args.latency_ms:g}ms"]["creates_per_s"]
            ratios[f"{server}/skeleton latency={args.latency_ms:g}ms"] = (
                round(slow / base, 3) if base else None
            )
    return {"cases": table, "bound_creates_per_s": round(bound, 1), "ratios": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 s per run, 1 repeat")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--accord", type=p1_create.checkout_arg, action="append", default=[])
    parser.add_argument("--database-url", default=p1_create.default_database_url())
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeat = 8, 1
    args.accord = args.accord or [("accord", p1_create.ROOT)]
    load_before = os.getloadavg()
    runs: list[dict[str, Any]] = []
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        sink = SmtpServer(Inbox(), free_port())
        sink.start()
        stack.callback(sink.stop)
        # The skeleton and each accord checkout, each with its own database and emulator.
        targets = p1_create.start_all(stack, args, "keycloak", sink.port)
        for target in targets.values():  # first creates: tokens, caches, plans
            p1_create.measure(target, tmp, orgs=64, connections=4, seconds=2)
        # Latencies alternate within a repeat and servers take turns within a latency.
        for _, latency in itertools.product(range(args.repeat), (0.0, args.latency_ms)):
            for server, target in targets.items():
                set_latency(target["emulator"], latency)
                figures = p1_create.measure(
                    target, tmp, orgs=64, connections=args.concurrency, seconds=args.seconds
                )
                runs.append({"server": server, "latency_ms": latency} | figures)
                print(json.dumps(runs[-1]), file=sys.stderr)
                set_latency(target["emulator"], 0)  # what wrk left running ends quickly
    report = {"benchmark": "p3_latency", "concurrency": args.concurrency}
    report |= {"latency_ms": args.latency_ms, "seconds_per_run": args.seconds}
    report |= {"repeat": args.repeat, "cpus": os.cpu_count()}
    report |= {"load_before": [round(x, 2) for x in load_before]}
    report |= {"load_after": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(report | summarize(runs, args), indent=2))


if __name__ == "__main__":
    main()

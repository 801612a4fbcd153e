"""Registration under a burst: argon2id hashing bounded, the event loop left free (issue 12).

    uv run python bench/registration.py [--quick] [--registrations 120] [--concurrency 16]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

In one process, on a database of its own (made on the server, migrated, dropped at the end),
with the built-in IdP: ``register`` (a new e-mail and a strong password each, so every one
hashes with argon2id) ``--concurrency`` at once. Two variants in the same run, taking turns:

- ``accord``: as it is (OWASP's argon2id configuration, 19 MiB / 2 passes / 1 lane, on
  ``HASHING_THREADS`` threads of its own, ``adapters/idp/local.py``);
- ``library_default``: what it was (argon2-cffi's default, 64 MiB / 3 passes / 4 lanes, on the
  event loop's default executor).

Beside each burst a probe sleeps 10 ms in a loop and records how late it wakes: what any other
request on that event loop would wait. The baseline, measured in the same run: bare hashes/s of
the accord variant's hasher on its threads (the ceiling a registration can reach here).

Prints one JSON object: per variant registrations/s, p50/p99 latency and the probe's p99/max
lateness (medians over the rounds), ``hashes_per_second``, ``accord / hash ceiling`` and the
load average.
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
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from event_overhead import SERVER
from reconcile import drop_database, fresh_database  # bench/ is on sys.path

import accord.adapters.idp.local as local
from accord.adapters.sealing import new_key_text
from accord.bootstrap import Accord, build
from accord.config import Settings
from accord.domain.callers import Caller
from accord.services.registration import Registration, register

PLATFORM = Caller.platform("bench", "bench@platform.test")
PASSWORD = "a long and rather unusual passphrase {}"
FIGURES = ("registrations_per_second", "p50_ms", "p99_ms", "loop_lag_p99_ms", "loop_lag_max_ms")


async def probe(stop: asyncio.Event, lateness: list[float]) -> None:
    """Sleep 10 ms again and again; record how much later than asked each wake-up came."""
    while not stop.is_set():
        asked = time.perf_counter()
        await asyncio.sleep(0.01)
        lateness.append(time.perf_counter() - asked - 0.01)


async def burst(accord: Accord, registrations: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    lateness: list[float] = []
    todo = iter(range(registrations))

    async def one_client() -> None:
        for n in todo:
            email = f"{uuid.uuid4().hex[:12]}@example.com"
            started = time.perf_counter()
            await register(
                accord,
                Registration(email, PASSWORD.format(n), "Bench Person"),
                caller=PLATFORM,
            )
            latencies.append(time.perf_counter() - started)

    stop = asyncio.Event()
    watcher = asyncio.create_task(probe(stop, lateness))
    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    stop.set()
    await watcher
    latencies.sort()
    lateness.sort()
    return {
        "registrations_per_second": registrations / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "loop_lag_p99_ms": 1000 * lateness[min(len(lateness) - 1, int(len(lateness) * 0.99))],
        "loop_lag_max_ms": 1000 * lateness[-1],
    }


async def hash_ceiling(count: int, concurrency: int) -> float:
    """Bare hashes per second through accord's hashing threads."""
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with gate:
            await local._hash(PASSWORD.format(n))

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    return count / (time.perf_counter() - started)


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(
        database_url=url,
        data_dir=Path(tempfile.mkdtemp(prefix="accord-bench-")),
        secret_key=new_key_text(),
        idp="local",
        database_pool_size=max(10, args.concurrency),
    )
    accord = build(settings)
    ours = (local._hasher, local._hashing)

    def as_accord() -> None:
        local._hasher, local._hashing = ours

    def as_library_default() -> None:
        local._hasher = PasswordHasher()
        local._hashing = None  # type: ignore[assignment]  # run_in_executor(None): the default

    variants = {"accord": as_accord, "library_default": as_library_default}
    try:
        await burst(accord, max(8, args.concurrency), args.concurrency)  # warm-up
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        ceilings = []
        for _ in range(args.repeat):
            for name, use in variants.items():
                use()
                rounds[name].append(await burst(accord, args.registrations, args.concurrency))
            as_accord()
            ceilings.append(await hash_ceiling(args.registrations, args.concurrency))
        summary = {
            name: {k: round(statistics.median(r[k] for r in results), 2) for k in FIGURES}
            for name, results in rounds.items()
        }
        ceiling = statistics.median(ceilings)
        return {
            **summary,
            "hashes_per_second": round(ceiling, 2),
            "accord_per_hash_ceiling": round(
                summary["accord"]["registrations_per_second"] / ceiling, 3
            ),
            "hashing_threads": local.HASHING_THREADS,
        }
    finally:
        as_accord()
        await accord.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short: 48 registrations, 2 rounds")
    parser.add_argument("--registrations", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("ACCORD_BENCH_SERVER", SERVER))
    args = parser.parse_args()
    if args.quick:
        args.registrations, args.repeat = 48, 2
    load_before = os.getloadavg()
    name, url = fresh_database(args.database_url)
    try:
        result = asyncio.run(measure(url, args))
    finally:
        drop_database(args.database_url, name)
    settings = {k: getattr(args, k) for k in ("registrations", "concurrency", "repeat")}
    print(
        json.dumps(
            {
                "benchmark": "registration",
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

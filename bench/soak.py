"""Soak: N provisioning operations against the Keycloak emulator with 30% 5xx, 10% ghost creates
and 429 bursts; then the worker settles everything and the guarantees are counted.

    uv run python bench/soak.py --operations 10000 [--concurrency 16] [--database-url URL]

Prints one JSON object: throughput with faults next to a fault-free baseline measured in the
same run (the machine is shared: compare the ratio, not the absolute numbers), how many requests
finished at once / went to the background, worker passes, and the checks (orphans, duplicates,
non-terminal operations: all must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.engine.conftest import PLATFORM
from tests.mailbox import Inbox, SmtpServer, free_port, make_everything_due

from accord.adapters.db import migrate
from accord.adapters.db.engine import sync_engine
from accord.adapters.idp.keycloak import KeycloakProvider
from accord.adapters.sealing import new_key_text
from accord.bootstrap import Accord, build
from accord.config import KeycloakSettings, Settings
from accord.domain import errors
from accord.emulators import keycloak
from accord.services import worker
from accord.services.organizations import NewOrganization, create_organization
from accord.services.provisioning import NewUser, create_user


def fresh_database(server_url: str) -> str:
    from sqlalchemy.engine import make_url

    name = f"accord_soak_{uuid.uuid4().hex[:8]}"
    engine = sync_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    return url


async def provision(accord: Accord, org: uuid.UUID, count: int, concurrency: int, tag: str):
    """Send ``count`` create requests; return (finished, pending, failed, per-request seconds)."""
    gate = asyncio.Semaphore(concurrency)
    outcome = {"finished": 0, "pending": 0, "failed": 0}
    latencies: list[float] = []

    async def one(i: int) -> None:
        async with gate:
            started = time.perf_counter()
            request = NewUser(f"{tag}{i}@example.com", f"User {i}", org)
            try:
                await create_user(accord, request, caller=PLATFORM, idempotency_key=f"{tag}-{i}")
                outcome["finished"] += 1
            except errors.OperationPending:
                outcome["pending"] += 1
            except errors.AccordError:
                outcome["failed"] += 1
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(one(i) for i in range(count)))
    return outcome, latencies


async def settle(accord: Accord, control: httpx.AsyncClient) -> int:
    """Worker passes (faults still on) until no operation is open; returns the pass count."""
    mailer = SmtpServer(Inbox(), free_port()).mailer()  # mail is not what this measures
    passes = 0
    while True:
        async with accord.db.transaction() as conn:
            open_ops = (
                await conn.execute(text("SELECT count(*) FROM operations WHERE state = 'open'"))
            ).scalar_one()
        if open_ops == 0:
            return passes
        print(f"settle pass {passes}: {open_ops} operations open", file=sys.stderr)
        await make_everything_due(accord)
        if passes % 4 == 0 and open_ops > 20:  # a 429 storm at the start of every 4th pass
            await control.post("/__faults/burst", json={"count": 5})
        await worker.run_until_idle(accord, mailer)
        passes += 1


async def check(accord: Accord) -> dict[str, int]:
    remote = [u async for u in accord.idp.iter_users(page_size=500)]
    async with accord.db.transaction() as conn:
        linked = set((await conn.execute(text("SELECT remote_id FROM idp_links"))).scalars())
        rows = (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one()
        non_terminal = (
            await conn.execute(text("SELECT count(*) FROM operations WHERE state = 'open'"))
        ).scalar_one()
        half_done = (
            await conn.execute(text("SELECT count(*) FROM users WHERE status = 'provisioning'"))
        ).scalar_one()
    emails = [u.email for u in remote]
    return {
        "idp_users": len(remote),
        "user_rows": rows,
        "orphan_idp_users": sum(1 for u in remote if u.remote_id not in linked),
        "orphan_rows": half_done,
        "duplicate_idp_emails": len(emails) - len(set(emails)),
        "non_terminal_operations": non_terminal,
    }


@contextmanager
def emulator(port: int, seed: int) -> Iterator[str]:
    """``accord emulate keycloak`` in its own process (it must not share our GIL)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "accord",
            "emulate",
            "keycloak",
            "--port",
            str(port),
            "--seed",
            str(seed),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/__faults", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.2)  # waiting for a server process to listen
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def run(args: argparse.Namespace) -> dict:
    faults = {"error_rate": args.error_rate, "ghost_rate": args.ghost_rate, "hang_seconds": 0}
    report: dict = {"operations": args.operations, "concurrency": args.concurrency}
    with emulator(free_port(), args.seed) as url:
        control = httpx.AsyncClient(base_url=url)
        kc = KeycloakSettings(
            server_url=url,
            realm=keycloak.DEFAULT_REALM,
            client_id=keycloak.DEFAULT_CLIENT_ID,
            client_secret=keycloak.DEFAULT_CLIENT_SECRET,
            timeout_seconds=5,
        )
        settings = Settings(
            database_url=fresh_database(args.database_url),
            secret_key=new_key_text(),
            data_dir=Path("/tmp/accord-soak"),
            operation_max_attempts=1000,
        )
        accord = build(settings, idp=KeycloakProvider.from_settings(kc))
        try:
            org = uuid.UUID(
                (
                    await create_organization(
                        accord, NewOrganization("Soak", max_users=100_000), caller=PLATFORM
                    )
                )["id"]
            )
            baseline_n = max(100, args.operations // 10)
            started = time.perf_counter()
            _, base_lat = await provision(accord, org, baseline_n, args.concurrency, "base")
            baseline_s = time.perf_counter() - started
            (await control.put("/__faults", json=faults)).raise_for_status()
            started = time.perf_counter()
            outcome, lat = await provision(accord, org, args.operations, args.concurrency, "soak")
            faulty_s = time.perf_counter() - started
            started = time.perf_counter()
            passes = await settle(accord, control)
            settle_s = time.perf_counter() - started
            stats = (await control.get("/__faults")).json()["stats"]
            (await control.post("/__faults/reset")).raise_for_status()
            report |= {
                "baseline": {
                    "requests": baseline_n,
                    "per_second": round(baseline_n / baseline_s, 1),
                    "median_ms": round(statistics.median(base_lat) * 1000, 1),
                },
                "with_faults": {
                    "per_second": round(args.operations / faulty_s, 1),
                    "median_ms": round(statistics.median(lat) * 1000, 1),
                    **outcome,
                },
                "throughput_ratio": round(
                    (args.operations / faulty_s) / (baseline_n / baseline_s), 3
                ),
                "settle": {"worker_passes": passes, "seconds": round(settle_s, 1)},
                "fault_stats": stats,
                "checks": await check(accord),
            }
        finally:
            await accord.aclose()
            await control.aclose()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--operations", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--error-rate", type=float, default=0.30)
    parser.add_argument("--ghost-rate", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "ACCORD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    report = asyncio.run(run(parser.parse_args()))
    print(json.dumps(report, indent=2))
    bad = {k: v for k, v in report["checks"].items() if k not in ("idp_users", "user_rows") and v}
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

"""Webhook deliveries per second to a fast receiver, against a bare httpx client, same run.

    uv run python bench/webhook_delivery.py [--quick] [--events 2000] [--repeat 3]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

The receiver is a raw asyncio HTTP/1.1 server in a process of its own on loopback, answering
every POST with 204 at once (keep-alive). On a database of its own (made on the server,
migrated, dropped at the end), one platform endpoint hears ``user.created``. A round commits
``--events`` ``user.created`` events (one new user each, so as many subjects), numbers them
(``assign_positions``, outside the timing), then times the worker's delivery pass
(``deliver_webhooks``: fan-out, lease, signed POST, record) run again and again until every
event was delivered. The baseline, in the same rounds, sends as many POSTs signed with
``standardwebhooks`` from one ``httpx.AsyncClient`` by ``PER_ENDPOINT_IN_FLIGHT`` tasks (the
bound one endpoint gets) to the same receiver: HTTP and signing alone, no database.

Prints one JSON object: deliveries/s and baseline/s (medians over the rounds), their ratio,
how many the receiver counted, and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconcile import drop_database, fresh_database  # bench/ is on sys.path

from accord.adapters.sealing import new_key_text
from accord.bootstrap import Accord, build
from accord.config import Settings, WebhookSettings
from accord.domain.callers import Caller
from accord.domain.records import AuditEvent
from accord.domain.webhooks import PER_ENDPOINT_IN_FLIGHT
from accord.services import webhooks
from accord.services.events import assign_positions
from accord.services.webhook_delivery import deliver_webhooks

PLATFORM = Caller.platform("bench", "bench@platform.test")
SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
EVENTS_PER_TRANSACTION = 200
NO_CONTENT = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"


# -- the receiver (its own process) ---------------------------------------------------------------


def serve(port: int, ready: Any, counted: Any) -> None:
    """Answer every request with 204; count the POSTs in ``counted``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                if head.startswith(b"POST"):
                    with counted.get_lock():
                        counted.value += 1
                writer.write(NO_CONTENT)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the rounds -----------------------------------------------------------------------------------


async def commit_events(accord: Accord, count: int) -> None:
    """``count`` new users, each with its ``user.created`` event, numbered in the feed."""
    for start in range(0, count, EVENTS_PER_TRANSACTION):
        async with accord.store.transaction() as tx:
            for _ in range(min(EVENTS_PER_TRANSACTION, count - start)):
                user_id = await tx.users.claim(
                    user_id=uuid.uuid4(),
                    email=f"{uuid.uuid4().hex[:16]}@example.com",
                    full_name="Bench User",
                    created_by="bench",
                )
                await tx.audit.record(AuditEvent("bench", "user.created", subject_user_id=user_id))
    await assign_positions(accord)


async def delivery_round(accord: Accord, count: int) -> dict[str, float]:
    """Run the worker's delivery pass until ``count`` deliveries succeeded."""
    delivered, passes = 0, 0
    started = time.perf_counter()
    while delivered < count:
        result = await deliver_webhooks(accord)
        delivered += result.delivered
        passes += 1
        if result.failed:
            raise RuntimeError(f"{result.failed} deliveries failed: the receiver should not fail")
    elapsed = time.perf_counter() - started
    return {"per_second": count / elapsed, "passes": passes}


async def baseline_round(url: str, secret: str, payload: dict[str, Any], count: int) -> float:
    """``count`` signed POSTs from one client, ``PER_ENDPOINT_IN_FLIGHT`` at a time: per second."""
    todo = iter(range(count))
    signer = Webhook(secret)

    async def one_sender(client: httpx.AsyncClient) -> None:
        for _ in todo:
            message_id, now = str(uuid.uuid4()), datetime.now(UTC)
            data = json.dumps(payload, separators=(",", ":"))
            headers = {
                "content-type": "application/json",
                "webhook-id": message_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signer.sign(msg_id=message_id, timestamp=now, data=data),
            }
            response = await client.post(url, content=data.encode(), headers=headers)
            response.raise_for_status()

    started = time.perf_counter()
    async with httpx.AsyncClient(follow_redirects=False, timeout=15.0) as client:
        await asyncio.gather(*(one_sender(client) for _ in range(PER_ENDPOINT_IN_FLIGHT)))
    return count / (time.perf_counter() - started)


async def measure(url: str, receiver: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(
        database_url=url,
        data_dir=Path(tempfile.mkdtemp(prefix="accord-bench-")),
        secret_key=new_key_text(),
        idp="local",
        database_pool_size=max(10, PER_ENDPOINT_IN_FLIGHT + 2),
        webhooks=WebhookSettings(allow_private_targets=True),
    )
    accord = build(settings)
    try:
        _, secret = await webhooks.create_endpoint(
            accord, PLATFORM, url=receiver, event_types=("user.created",)
        )
        await commit_events(accord, 20)  # warm-up: connections, the first fan-out
        await delivery_round(accord, 20)
        async with accord.db.transaction() as conn:
            payload = (
                await conn.execute(text("SELECT payload FROM webhook_deliveries LIMIT 1"))
            ).scalar_one()
        rounds: dict[str, list[float]] = {"deliveries_per_second": [], "baseline_per_second": []}
        passes = []
        for _ in range(args.repeat):
            await commit_events(accord, args.events)
            delivered = await delivery_round(accord, args.events)
            rounds["deliveries_per_second"].append(delivered["per_second"])
            passes.append(delivered["passes"])
            baseline = await baseline_round(receiver, secret, payload, args.events)
            rounds["baseline_per_second"].append(baseline)
        summary = {k: round(statistics.median(v), 1) for k, v in rounds.items()}
        return {
            **summary,
            "ratio": round(summary["deliveries_per_second"] / summary["baseline_per_second"], 3),
            "rounds": {k: [round(x, 1) for x in v] for k, v in rounds.items()},
            "delivery_passes_per_round": passes,
        }
    finally:
        await accord.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short: 400 events, 2 rounds")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("ACCORD_BENCH_SERVER", SERVER))
    args = parser.parse_args()
    if args.quick:
        args.events, args.repeat = 400, 2
    port = free_port()
    spawn = multiprocessing.get_context("spawn")
    ready, counted = spawn.Event(), spawn.Value("q", 0)
    receiver = spawn.Process(target=serve, args=(port, ready, counted), daemon=True)
    receiver.start()
    if not ready.wait(timeout=60):
        raise SystemExit("the receiver did not start")
    load_before = os.getloadavg()
    name, url = fresh_database(args.database_url)
    try:
        result = asyncio.run(measure(url, f"http://127.0.0.1:{port}/hooks", args))
    finally:
        drop_database(args.database_url, name)
        receiver.terminate()
        receiver.join(timeout=10)
    print(
        json.dumps(
            {
                "benchmark": "webhook_delivery",
                "settings": {
                    "events": args.events,
                    "repeat": args.repeat,
                    "per_endpoint_in_flight": PER_ENDPOINT_IN_FLIGHT,
                },
                **result,
                "receiver_counted": counted.value,
                "load_before": [round(x, 2) for x in load_before],
                "load_after": [round(x, 2) for x in os.getloadavg()],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

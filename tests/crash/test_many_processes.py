"""Several processes on one PostgreSQL: four `accord serve` and two `accord worker`, 200
requests, 16 at a time (the same e-mails sent to different processes, an organization at its
limit, registrations each sent twice with one key); each request has an Idempotency-Key and is
retried with it until its answer is final. Sized to outcomes, not the clock: every key ends
with one answer, which a replay repeats (G6), and once settled the guarantees hold."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from accord.bootstrap import Accord
from accord.services.tokens import create_token
from tests.api.test_serve import free_port, start, wait_until_healthy
from tests.engine.conftest import new_org, scalar
from tests.guarantees import assert_guarantees
from tests.patience import PATIENCE

SETTLE_SECONDS = 120.0
CONCURRENCY = 16  # requests in flight at once: enough to race, few enough not to time out
KEY = "Idempotency-Key"


def outcome(response: httpx.Response) -> tuple[int, Any]:
    """Status and body, less the per-request trace id a problem document carries."""
    body = response.json()
    if isinstance(body, dict):
        body.pop("request_id", None)
    return response.status_code, body


async def until_final(
    client: httpx.AsyncClient, url: str, body: dict[str, str], headers: dict[str, str]
) -> httpx.Response:
    """POST until the answer is final, retrying with the same key after a timeout, a lost
    connection, a 202 (still pending) or a 409 (this key is still running): G6 makes that safe."""
    deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
    while True:
        assert asyncio.get_running_loop().time() < deadline, f"{url} {body}: no final answer"
        try:
            response = await client.post(url, json=body, headers=headers)
        except httpx.TransportError:  # a timeout or a dropped connection: retry, same key
            continue
        busy = response.status_code == 409 and response.json()["code"] == "operation_in_progress"
        if response.status_code != 202 and not busy:
            return response
        await asyncio.sleep(0.2)  # the operation is running: poll, bounded by the deadline


@pytest.fixture
def env(settings) -> dict[str, str]:
    return {
        "ACCORD_DATABASE_URL": settings.database_url.get_secret_value(),
        "ACCORD_DATA_DIR": str(settings.data_dir),
        "ACCORD_SECRET_KEY": settings.secret_key.get_secret_value(),
        "ACCORD_WORKER_POLL_SECONDS": "0.2",
        # Six processes share the server's 100 connections (with the tests' own).
        "ACCORD_DATABASE_POOL_SIZE": "4",
        "ACCORD_REGISTRATION__VERIFY_EMAIL": "false",  # registrations at once, as they were
        # Every request comes from loopback: the per-address limit of public endpoints would
        # answer 429 to the load (tests/security/test_throttling.py tests the limit itself).
        "ACCORD_THROTTLE__PUBLIC_REQUESTS_PER_ADDRESS": "100000/minute",
    }


async def settled(accord: Accord) -> None:
    """Wait (bounded) until no operation is open: the workers' job, observed from outside."""
    deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
    while await scalar(accord, "SELECT count(*) FROM operations WHERE state = 'open'"):
        assert asyncio.get_running_loop().time() < deadline, "operations still open"
        await asyncio.sleep(0.2)  # polling an observable condition, bounded by the deadline


async def test_four_servers_two_workers_two_hundred_requests(
    accord: Accord, env: dict[str, str]
) -> None:
    ports = [free_port() for _ in range(4)]
    servers = [start(env, "serve", "--port", str(p), "--no-worker") for p in ports]
    workers = [start(env, "worker") for _ in range(2)]
    try:
        for port, server in zip(ports, servers, strict=True):
            await asyncio.to_thread(wait_until_healthy, f"http://127.0.0.1:{port}", server)
        token, _ = await create_token(accord, name="load")
        full = await new_org(accord, "Small", max_users=10)
        roomy = await new_org(accord, "Roomy", max_users=500)
        rng = random.Random(11)
        requests = []
        for i in range(200):
            kind = i % 4
            if kind == 0:  # one of 20 e-mails, sent to any process, in any spelling
                email = f"Shared{rng.randrange(20)}@Example.com"
                requests.append(
                    (f"/api/admin/organizations/{roomy}/users", {"email": email, "full_name": "S"})
                )
            elif kind == 1:  # 50 people into an organization with room for 10
                requests.append(
                    (
                        f"/api/admin/organizations/{full}/users",
                        {"email": f"f{i}@example.com", "full_name": "F"},
                    )
                )
            elif kind == 2:  # registrations, each sent twice to different processes
                email = f"reg{i // 8}@example.com"
                requests.append(
                    (
                        "/api/auth/register",
                        {"email": email, "password": "long enough pw", "full_name": "R"},
                    )
                )
            else:
                requests.append(
                    (
                        f"/api/admin/organizations/{roomy}/users",
                        {"email": f"u{i}@example.com", "full_name": "U"},
                    )
                )
        headers = {"Authorization": f"Bearer {token}"}
        # Registrations sent twice share a key (the second is a retry, to another process).
        keys = [
            f"reg-{i // 8}" if path == "/api/auth/register" else f"load-{i}"
            for i, (path, _) in enumerate(requests)
        ]
        gate = asyncio.Semaphore(CONCURRENCY)
        async with httpx.AsyncClient(timeout=PATIENCE) as client:

            async def send(i: int) -> httpx.Response:
                path, body = requests[i]
                url = f"http://127.0.0.1:{ports[i % 4]}{path}"
                async with gate:
                    return await until_final(client, url, body, {**headers, KEY: keys[i]})

            answers = await asyncio.gather(*(send(i) for i in range(len(requests))))
            await settled(accord)
            # G6: a retry of each key, once all is settled, answers exactly what it answered.
            replays = await asyncio.gather(*(send(i) for i in range(len(requests))))
        for i, (first, replay) in enumerate(zip(answers, replays, strict=True)):
            assert outcome(replay) == outcome(first), i
        by_key: dict[str, list[tuple[int, Any]]] = {}
        for key, answer in zip(keys, answers, strict=True):
            if outcome(answer) not in by_key.setdefault(key, []):
                by_key[key].append(outcome(answer))
        assert all(len(seen) == 1 for seen in by_key.values()), by_key  # one outcome per key
        statuses = [r.status_code for r in answers]
        assert set(statuses) <= {200, 201, 409, 422}, statuses
        codes = {r.json().get("code") for r in answers if r.status_code >= 400}
        assert codes <= {"email_exists", "organization_full"}, codes
        await settled(accord)
    finally:
        for process in servers + workers:
            process.terminate()
        for process in servers + workers:
            process.communicate(timeout=60)  # drains and closes its pipes
    await assert_guarantees(accord)
    assert (
        await scalar(accord, f"SELECT count(*) FROM memberships WHERE organization_id = '{full}'")
        == 10
    )
    shared = await scalar(accord, "SELECT count(*) FROM users WHERE email LIKE 'shared%'")
    assert shared == len({b["email"].lower() for p, b in requests if "Shared" in b["email"]})
    async with accord.db.transaction() as conn:
        owners = (
            await conn.execute(text("SELECT count(*) FROM organizations WHERE kind = 'personal'"))
        ).scalar_one()
    assert owners == len({b["email"] for p, b in requests if p == "/api/auth/register"})

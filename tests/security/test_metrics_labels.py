"""Finding "/metrics grew to 6 MB" (issue 11, abuse is free): on 2a4d142 each made-up method
became a label value, so 3,200 requests with junk methods made /metrics 6 MB and 2 s a scrape.
Now the method label is a known method or ``other`` and the route label a route template or
``other``: however many junk requests arrive, the number of series stays small."""

from __future__ import annotations

import asyncio
import random
import string
from uuid import uuid4

import httpx

from tests.security import verifying_server

settings, http = verifying_server.settings, verifying_server.http

JUNK_REQUESTS = 3000
# Every (route template, known method, status) a test run can produce stays far below this.
MAX_SERIES_LINES = 600


def junk_method(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 12)))


async def series_lines(http: httpx.AsyncClient) -> list[str]:
    scraped = await http.get("/metrics")
    assert scraped.status_code == 200
    return [line for line in scraped.text.splitlines() if not line.startswith("#")]


async def test_junk_methods_and_paths_do_not_mint_series(http: httpx.AsyncClient) -> None:
    rng = random.Random(11)
    limit = asyncio.Semaphore(20)

    async def junk(i: int) -> int:
        method = junk_method(rng) if i % 2 else rng.choice(["GET", "DELETE"])
        path = f"/{uuid4().hex}/{i}" if i % 3 else f"/api/admin/users/{uuid4()}"
        async with limit:
            try:
                return (await http.request(method, path)).status_code
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # The server closed an idle pooled connection as this request reused it (a
                # starved client on a loaded machine); the junk request is safe to send again.
                return (await http.request(method, path)).status_code

    statuses = await asyncio.gather(*(junk(i) for i in range(JUNK_REQUESTS)))
    assert all(400 <= s < 500 for s in statuses), set(statuses)
    lines = await series_lines(http)
    assert len(lines) < MAX_SERIES_LINES, len(lines)
    requests = [line for line in lines if line.startswith("accord_http_requests_total")]
    methods = {line.split('method="')[1].split('"')[0] for line in requests}
    assert methods <= {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other"}
    assert not any(line.count("/") > 8 for line in requests), "a raw path became a label"

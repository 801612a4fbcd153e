"""The change feed is scoped like every read (G10): an organization token reads its own
organization's events only, naming another organization gives the same empty page as naming
one that does not exist, and a cursor older than retention answers 410 ``cursor_expired``
rather than silently skipping what was deleted."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
from sqlalchemy import text

from accord.bootstrap import Accord
from accord.services import tokens, worker
from tests.api.conftest import bearer, new_org, problem
from tests.security import verifying_server

settings, http = verifying_server.settings, verifying_server.http


async def feed(http: httpx.AsyncClient, token: str, **params: str) -> list[dict]:
    answer = await http.get("/api/events", params=params, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def test_an_organization_token_reads_only_its_organization_s_events(
    accord: Accord, http: httpx.AsyncClient
) -> None:
    tag = uuid4().hex[:8]
    a, b = await new_org(accord, f"Feed A {tag}"), await new_org(accord, f"Feed B {tag}")
    token_a, _ = await tokens.create_token(accord, name="a", organization_id=a)
    token_b, _ = await tokens.create_token(accord, name="b", organization_id=b)
    for token, org, name in ((token_a, a, "ann"), (token_b, b, "bea")):
        made = await http.post(
            f"/api/admin/organizations/{org}/users",
            json={"email": f"{name}-{tag}@example.com", "full_name": name},
            headers=bearer(token),
        )
        assert made.status_code in (201, 202), made.text

    seen_by_a = await feed(http, token_a)
    assert {e["type"] for e in seen_by_a} >= {"organization.created", "user.created"}
    assert all(str(b) not in repr(e) for e in seen_by_a), "org A read an event of org B"
    assert all(f"bea-{tag}" not in repr(e) for e in seen_by_a)
    assert await feed(http, token_a, organization_id=str(b)) == []  # another tenant's: empty
    assert await feed(http, token_a, organization_id=str(uuid4())) == []  # as an unknown one
    seen_by_b = await feed(http, token_b)
    assert any(e["data"] and e["data"].get("email") == f"bea-{tag}@example.com" for e in seen_by_b)
    assert all(str(a) not in repr(e) for e in seen_by_b)


async def test_a_cursor_older_than_retention_answers_410(
    accord: Accord, http: httpx.AsyncClient
) -> None:
    platform, _ = await tokens.create_token(accord, name="platform")
    await new_org(accord, f"Old {uuid4().hex[:8]}")
    start = await http.get("/api/events", params={"limit": "1"}, headers=bearer(platform))
    cursor = start.json()["next_cursor"]
    await new_org(accord, f"Old too {uuid4().hex[:8]}")
    await feed(http, platform)  # numbered
    async with accord.db.transaction() as conn:  # a month passes
        old = datetime.now(UTC) - timedelta(days=31)
        await conn.execute(text("UPDATE change_events SET occurred_at = :t"), {"t": old})
    await worker.housekeeping(accord, worker.Pass())

    late = await http.get("/api/events", params={"after": cursor}, headers=bearer(platform))
    body = problem(late, 410, "cursor_expired")
    oldest = re.search(r"after=([0-9]+)", body["detail"]).group(1)
    assert int(oldest) > int(cursor)
    again = await http.get("/api/events", params={"after": oldest}, headers=bearer(platform))
    assert again.status_code == 200 and again.json()["items"] == []
    bad = await http.get("/api/events", params={"after": "x1"}, headers=bearer(platform))
    problem(bad, 422, "invalid_input")
    unknown = await http.get(
        "/api/events", params={"types": "user.eaten"}, headers=bearer(platform)
    )
    problem(unknown, 422, "invalid_input")
    anonymous = await http.get("/api/events")
    problem(anonymous, 401, "unauthenticated")

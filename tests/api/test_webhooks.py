"""Webhook endpoints over HTTP: registered with a secret shown once and stored sealed, read,
changed, rotated, replayed and removed; input mistakes answer problem documents."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text

from accord.bootstrap import Accord
from tests.api.conftest import Tokens, bearer, problem

URL = "https://93.184.215.14/hooks/accord"  # a public address, never contacted here


async def test_an_endpoint_is_registered_read_changed_and_removed(
    accord: Accord, client: httpx.AsyncClient, creds: Tokens
) -> None:
    auth = bearer(creds.platform)
    made = await client.post(
        "/api/admin/webhooks",
        json={"url": URL, "event_types": ["user.created"], "organization_id": str(creds.a)},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    endpoint = made.json()
    assert endpoint["secret"].startswith("whsec_") and len(endpoint["secret"]) > 30
    assert endpoint["enabled"] is True and endpoint["event_types"] == ["user.created"]
    one = f"/api/admin/webhooks/{endpoint['id']}"

    read = (await client.get(one, headers=auth)).json()
    assert "secret" not in read and read["url"] == URL
    assert endpoint["id"] in {
        e["id"] for e in (await client.get("/api/admin/webhooks", headers=auth)).json()["items"]
    }
    async with accord.db.engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT sealed_secrets FROM webhook_endpoints WHERE id = :id"),
                {"id": endpoint["id"]},
            )
        ).scalar_one()
    assert endpoint["secret"].encode() not in bytes(stored)  # G9: sealed, not in plaintext

    changed = await client.patch(one, json={"event_types": [], "enabled": False}, headers=auth)
    assert changed.status_code == 200, changed.text
    assert changed.json()["event_types"] == [] and changed.json()["enabled"] is False
    rotated = await client.post(f"{one}/rotate-secret", headers=auth)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != endpoint["secret"]
    replay = await client.post(f"{one}/replay", json={"after": 0}, headers=auth)
    assert replay.status_code == 202, replay.text
    deliveries = await client.get(f"{one}/deliveries", headers=auth)
    assert deliveries.status_code == 200 and deliveries.json() == {"items": []}

    gone = await client.delete(one, headers=auth)
    assert gone.json() == {"id": endpoint["id"], "deleted": True}
    problem(await client.get(one, headers=auth), 404, "webhook_not_found")


async def test_wrong_input_is_refused_with_a_reason(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    auth = bearer(creds.platform)
    unknown_type = await client.post(
        "/api/admin/webhooks", json={"url": URL, "event_types": ["user.exploded"]}, headers=auth
    )
    problem(unknown_type, 422, "invalid_input")
    not_http = await client.post(
        "/api/admin/webhooks", json={"url": "ftp://x.example/"}, headers=auth
    )
    problem(not_http, 422, "invalid_input")
    no_org = await client.post(
        "/api/admin/webhooks",
        json={"url": URL, "organization_id": "00000000-0000-4000-8000-000000000000"},
        headers=auth,
    )
    problem(no_org, 404, "organization_not_found")


async def endpoints_at(accord: Accord, url: str) -> int:
    async with accord.db.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM webhook_endpoints WHERE url = :url"), {"url": url}
        )
        return int(found.scalar_one())


async def test_a_retry_with_the_same_key_answers_the_first_endpoint_and_its_secret(
    accord: Accord, client: httpx.AsyncClient, creds: Tokens
) -> None:
    url = f"{URL}/{creds.tag}/retried"
    auth = {**bearer(creds.platform), "Idempotency-Key": f"hook-{creds.tag}"}
    body = {"url": url, "event_types": ["user.created"], "organization_id": str(creds.a)}
    first = await client.post("/api/admin/webhooks", json=body, headers=auth)
    assert first.status_code == 201, first.text
    again = await client.post("/api/admin/webhooks", json=body, headers=auth)
    assert again.status_code == 201, again.text
    assert again.json() == first.json()  # the same id, the same secret, the same body
    assert first.json()["secret"].startswith("whsec_")
    assert await endpoints_at(accord, url) == 1

    other = {**body, "event_types": ["user.updated"]}
    reused = await client.post("/api/admin/webhooks", json=other, headers=auth)
    problem(reused, 422, "idempotency_key_reused")
    assert await endpoints_at(accord, url) == 1
    fresh = {**bearer(creds.platform), "Idempotency-Key": f"hook-{creds.tag}-2"}
    second = await client.post("/api/admin/webhooks", json=body, headers=fresh)
    assert second.status_code == 201 and second.json()["id"] != first.json()["id"]
    assert second.json()["secret"] != first.json()["secret"]


async def test_two_concurrent_requests_with_one_key_make_one_endpoint(
    accord: Accord, client: httpx.AsyncClient, creds: Tokens
) -> None:
    url = f"{URL}/{creds.tag}/raced"
    auth = {**bearer(creds.platform), "Idempotency-Key": f"race-{creds.tag}"}
    body = {"url": url, "organization_id": str(creds.a)}
    answers = await asyncio.gather(
        *(client.post("/api/admin/webhooks", json=body, headers=auth) for _ in range(2))
    )
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    assert answers[0].json() == answers[1].json()
    assert await endpoints_at(accord, url) == 1

"""Webhook endpoints over HTTP: registered with a secret shown once and stored sealed, read,
changed, rotated, replayed and removed; input mistakes answer problem documents."""

from __future__ import annotations

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

"""Idempotency-Key over HTTP (G6): replays, reuse with another body, a request still running,
and 202 while the identity provider is down."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import httpx
import pytest

from accord.services import operations
from accord.services.hooks import Hooks
from accord.testing import FakeIdentityProvider
from tests.api.conftest import ServeFactory, Tokens, bearer, problem


def key() -> str:
    return str(uuid.uuid4())


def body(creds: Tokens, org: object, name: str = "ada", **changes: Any) -> dict[str, Any]:
    """A new user of this test's own."""
    return {"email": creds.email(name), "full_name": "Ada", "organization_id": str(org), **changes}


async def test_the_same_key_and_body_replays_the_same_answer(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    headers = bearer(creds.platform, **{"Idempotency-Key": key()})
    request = body(creds, creds.a, credential="temp_password")
    first = await client.post("/api/admin/users", json=request, headers=headers)
    again = await client.post("/api/admin/users", json=request, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.json()["temporary_password"] == first.json()["temporary_password"]
    users = await client.get(
        "/api/admin/users", params={"organization_id": str(creds.a)}, headers=bearer(creds.platform)
    )
    assert len(users.json()["items"]) == 1


async def test_a_stored_failure_is_replayed_too(client: httpx.AsyncClient, creds: Tokens) -> None:
    await client.post("/api/admin/users", json=body(creds, creds.a), headers=bearer(creds.platform))
    headers = bearer(creds.platform, **{"Idempotency-Key": key()})
    first = await client.post("/api/admin/users", json=body(creds, creds.b), headers=headers)
    again = await client.post("/api/admin/users", json=body(creds, creds.b), headers=headers)
    problem(first, 409, "email_exists")
    assert again.status_code == 409
    assert {k: v for k, v in again.json().items() if k != "request_id"} == {
        k: v for k, v in first.json().items() if k != "request_id"
    }


async def test_the_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    headers = bearer(creds.platform, **{"Idempotency-Key": key()})
    assert (
        await client.post("/api/admin/users", json=body(creds, creds.a), headers=headers)
    ).status_code == 201
    other = await client.post("/api/admin/users", json=body(creds, creds.a, "x"), headers=headers)
    problem(other, 422, "idempotency_key_reused")


async def test_keys_are_scoped_per_caller(client: httpx.AsyncClient, creds: Tokens) -> None:
    shared = key()
    first = await client.post(
        f"/api/admin/organizations/{creds.a}/users",
        json={"email": creds.email("a"), "full_name": "A"},
        headers=bearer(creds.org_a, **{"Idempotency-Key": shared}),
    )
    second = await client.post(
        f"/api/admin/organizations/{creds.b}/users",
        json={"email": creds.email("b"), "full_name": "B"},
        headers=bearer(creds.org_b, **{"Idempotency-Key": shared}),
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["user"]["id"] != second.json()["user"]["id"]


async def test_a_malformed_key_is_refused(client: httpx.AsyncClient, creds: Tokens) -> None:
    for bad in ('quote"inside', "x" * 300, "bad key with spaces", "ключ-ключ-ключ-ключ"):
        headers = {**bearer(creds.platform), "Idempotency-Key": bad}
        encoded = {k: v.encode() for k, v in headers.items()}
        response = await client.post("/api/admin/users", json=body(creds, creds.a), headers=encoded)
        found = problem(response, 422, "invalid_input")
        assert found["errors"][0]["field"] == "header.Idempotency-Key"


async def test_a_short_key_is_a_key(client: httpx.AsyncClient, creds: Tokens) -> None:
    """The IETF draft sets no minimum: ``order-42`` is as good a key as a UUID."""
    headers = bearer(creds.platform, **{"Idempotency-Key": f"o-{uuid.uuid4().hex[:6]}"})
    request = body(creds, creds.a, name="shortkey")
    first = await client.post("/api/admin/users", json=request, headers=headers)
    again = await client.post("/api/admin/users", json=request, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()


async def test_a_quoted_structured_field_key_is_the_same_key(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    plain = key()
    first = await client.post(
        "/api/admin/users",
        json=body(creds, creds.a),
        headers=bearer(creds.platform, **{"Idempotency-Key": plain}),
    )
    quoted = await client.post(
        "/api/admin/users",
        json=body(creds, creds.a),
        headers=bearer(creds.platform, **{"Idempotency-Key": f'"{plain}"'}),
    )
    assert quoted.json() == first.json()


async def test_202_while_the_identity_provider_is_down_then_201_on_retry(
    client: httpx.AsyncClient, fake: FakeIdentityProvider, creds: Tokens
) -> None:
    fake.script("create", "unavailable")
    headers = bearer(creds.platform, **{"Idempotency-Key": key()})
    pending = await client.post("/api/admin/users", json=body(creds, creds.a), headers=headers)
    assert pending.status_code == 202, pending.text
    operation_id = pending.json()["operation_id"]
    assert pending.headers["location"] == f"/api/operations/{operation_id}"
    assert int(pending.headers["retry-after"]) >= 1
    assert pending.json()["code"] == "idp_unavailable" and pending.json()["state"] == "open"
    state = await client.get(pending.headers["location"], headers=bearer(creds.platform))
    assert state.json()["state"] == "open" and state.json()["error"]["code"] == "idp_unavailable"
    done = await client.post("/api/admin/users", json=body(creds, creds.a), headers=headers)
    assert done.status_code == 201, done.text
    assert done.json()["operation_id"] == operation_id
    state = await client.get(pending.headers["location"], headers=bearer(creds.platform))
    assert state.json()["state"] == "succeeded"
    assert state.json()["result"]["user"]["id"] == done.json()["user"]["id"]


async def test_a_user_still_provisioning_cannot_be_deprovisioned_yet(
    client: httpx.AsyncClient, fake: FakeIdentityProvider, creds: Tokens
) -> None:
    fake.script("create", "unavailable")
    pending = await client.post(
        "/api/admin/users", json=body(creds, creds.a), headers=bearer(creds.platform)
    )
    assert pending.status_code == 202
    users = await client.get(
        "/api/admin/users", params={"email": creds.email()}, headers=bearer(creds.platform)
    )
    [row] = users.json()["items"]
    assert row["status"] == "provisioning"
    refused = await client.delete(f"/api/admin/users/{row['id']}", headers=bearer(creds.platform))
    problem(refused, 409, "operation_in_progress")
    assert refused.headers["retry-after"]


async def test_409_while_the_first_request_with_the_key_still_runs(
    serve: ServeFactory, creds: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operations, "SAME_KEY_WAIT_SECONDS", 0.2)
    inside, release = threading.Event(), threading.Event()
    hooks = Hooks()

    @hooks.register
    async def slow_hook(conn: Any, user: Any) -> None:
        inside.set()
        await asyncio.to_thread(release.wait, 30)

    headers = bearer(creds.platform, **{"Idempotency-Key": key()})
    with serve(hooks=hooks) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            first = asyncio.create_task(
                http.post("/api/admin/users", json=body(creds, creds.a), headers=headers)
            )
            assert await asyncio.to_thread(inside.wait, 30)
            busy = await http.post("/api/admin/users", json=body(creds, creds.a), headers=headers)
            release.set()
            finished = await first
    problem(busy, 409, "operation_in_progress")
    assert busy.headers["retry-after"]
    assert finished.status_code == 201

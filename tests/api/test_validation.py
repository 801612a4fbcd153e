"""Strict input: unknown fields, bounds, control characters, malformed ids and body size."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.api.conftest import Tokens, bearer, problem


def user(creds: Tokens, **changes: Any) -> dict[str, Any]:
    return {
        "email": "ada@example.com",
        "full_name": "Ada",
        "organization_id": str(creds.a),
        **changes,
    }


async def refused(client: httpx.AsyncClient, creds: Tokens, body: Any, field: str) -> str:
    response = await client.post("/api/admin/users", json=body, headers=bearer(creds.platform))
    found = problem(response, 422, "invalid_input")
    fields = [e["field"] for e in found["errors"]]
    assert any(f == field or f.startswith(f"{field}.") for f in fields), fields
    assert field in found["detail"]
    return found["detail"]


async def test_unknown_fields_are_refused(client: httpx.AsyncClient, creds: Tokens) -> None:
    await refused(client, creds, user(creds, is_platform_admin=True), "body.is_platform_admin")


async def test_missing_and_mistyped_fields_are_named(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    await refused(client, creds, {"email": "ada@example.com"}, "body.full_name")
    await refused(client, creds, user(creds, organization_id="not-a-uuid"), "body.organization_id")
    await refused(client, creds, user(creds, role="owner"), "body.role")
    await refused(client, creds, user(creds, permissions="all"), "body.permissions")


TOO_LONG_OR_CONTROL = [
    ("full_name", "x" * 201),
    ("email", "a" * 310 + "@example.com"),
    ("permissions", ["p" * 101]),
    ("permissions", [f"p{n}" for n in range(201)]),
    ("full_name", "Ada\x00Lovelace"),
    ("full_name", "Ada\nLovelace"),
]


async def test_bounds_and_control_characters(client: httpx.AsyncClient, creds: Tokens) -> None:
    for field, value in TOO_LONG_OR_CONTROL:
        detail = await refused(client, creds, user(creds, **{field: value}), f"body.{field}")
        assert "x" * 50 not in detail and "\x00" not in detail  # the value is never echoed


async def test_a_secret_in_an_invalid_body_is_not_echoed(local_client: httpx.AsyncClient) -> None:
    response = await local_client.post(
        "/api/auth/login", json={"email": "a@example.com", "password": "hunter2\x01", "x": 1}
    )
    found = problem(response, 422, "invalid_input")
    assert "hunter2" not in response.text
    assert {e["field"] for e in found["errors"]} == {"body.password", "body.x"}


async def test_an_invalid_address_is_email_invalid(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    response = await client.post(
        "/api/admin/users", json=user(creds, email="not an address"), headers=bearer(creds.platform)
    )
    problem(response, 422, "email_invalid")
    listed = await client.get(
        "/api/admin/users", params={"email": "nope"}, headers=bearer(creds.platform)
    )
    problem(listed, 422, "email_invalid")


async def test_malformed_ids_and_parameters(client: httpx.AsyncClient, creds: Tokens) -> None:
    headers = bearer(creds.platform)
    for url, field in [
        ("/api/admin/users/42", "path.user_id"),
        ("/api/admin/organizations/x", "path.organization_id"),
        ("/api/operations/x", "path.operation_id"),
        ("/api/admin/users?limit=0", "query.limit"),
        ("/api/admin/users?limit=201", "query.limit"),
        ("/api/admin/users?organization_id=x", "query.organization_id"),
    ]:
        found = problem(await client.get(url, headers=headers), 422, "invalid_input")
        assert found["errors"][0]["field"] == field


async def test_a_bad_acting_user_header_is_refused(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    headers = bearer(creds.platform, **{"X-Acting-User": "x" * 201})
    found = problem(
        await client.get("/api/admin/users", headers=headers), 400, "invalid_acting_user"
    )
    assert "200" in found["detail"]


async def test_malformed_json_is_refused(client: httpx.AsyncClient, creds: Tokens) -> None:
    response = await client.post(
        "/api/admin/users",
        content=b'{"email": ',
        headers=bearer(creds.platform, **{"Content-Type": "application/json"}),
    )
    problem(response, 422, "invalid_input")


async def test_a_body_that_is_not_utf8_is_invalid_input(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    response = await client.post(
        "/api/auth/register", content=b"\xfex|\xff\n", headers={"Content-Type": "application/json"}
    )
    assert problem(response, 422, "invalid_input")["errors"][0]["field"] == "body"


async def test_an_oversized_body_is_413(client: httpx.AsyncClient, creds: Tokens) -> None:
    big = user(creds, full_name="x" * 70_000)
    response = await client.post("/api/admin/users", json=big, headers=bearer(creds.platform))
    found = problem(response, 413, "payload_too_large")
    assert "65536" in found["detail"]


async def test_an_oversized_chunked_body_is_413(client: httpx.AsyncClient, creds: Tokens) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 8192

    response = await client.post(
        "/api/auth/register", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    problem(response, 413, "payload_too_large")

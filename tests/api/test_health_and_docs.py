"""Health, readiness, metrics, logs and the OpenAPI document."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from accord.entrypoints.api.problems import STATUS_BY_CODE
from accord.testing import FakeIdentityProvider
from tests.api.conftest import Tokens, bearer


async def test_liveness_and_readiness(
    client: httpx.AsyncClient, fake: FakeIdentityProvider
) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "idp": "ok"},
    }
    fake.script("check", "unavailable")
    down = await client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["checks"]["idp"] == "idp_unavailable"
    fake.script("check", "misconfigured")
    assert (await client.get("/readyz")).json()["checks"]["idp"] == "idp_misconfigured"


async def test_metrics_count_operations_and_read_open_ones_from_the_database(
    client: httpx.AsyncClient, fake: FakeIdentityProvider, creds: Tokens
) -> None:
    org = f"/api/admin/organizations/{creds.a}/users"
    headers = bearer(creds.platform)
    await client.post(org, json={"email": "a@example.com", "full_name": "A"}, headers=headers)
    await client.post(org, json={"email": "a@example.com", "full_name": "A"}, headers=headers)
    fake.script("create", "unavailable")
    pending = await client.post(
        org, json={"email": "b@example.com", "full_name": "B"}, headers=headers
    )
    assert pending.status_code == 202
    await client.get("/readyz")
    text = (await client.get("/metrics")).text
    assert 'accord_operations_total{kind="create_user",outcome="succeeded"} 1.0' in text
    assert 'accord_operations_total{kind="create_user",outcome="email_exists"} 1.0' in text
    assert 'accord_operations_total{kind="create_user",outcome="pending"} 1.0' in text
    assert 'accord_operations_open{kind="create_user"} 1.0' in text
    assert 'accord_operations_open{kind="register"} 0.0' in text
    assert 'accord_idp_call_duration_seconds_count{call="check",outcome="ok"} 1.0' in text
    assert 'accord_operation_duration_seconds_count{kind="create_user"} 3.0' in text
    assert 'route="/api/admin/organizations/{org_id}/users",status="202"' in text


async def test_access_logs_are_json_with_ids_and_no_secrets(
    local_client: httpx.AsyncClient, creds: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="accord.api")
    response = await local_client.post(
        "/api/admin/users",
        json={
            "email": "log@example.com",
            "full_name": "Log",
            "organization_id": str(creds.a),
            "credential": "temp_password",
        },
        headers=bearer(creds.platform, **{"X-Request-ID": "req-123"}),
    )
    assert response.headers["x-request-id"] == "req-123"
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "accord.api"]
    [line] = [entry for entry in lines if entry.get("request_id") == "req-123"]
    assert line["status"] == 201 and line["method"] == "POST"
    assert line["operation_id"] == response.json()["operation_id"]
    assert line["caller"].startswith("token:")
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert creds.platform not in everything
    assert response.json()["temporary_password"] not in everything


async def test_an_unsafe_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert response.headers["x-request-id"] != "bad id\twith spaces"
    assert len(response.headers["x-request-id"]) == 32


async def test_the_openapi_document_is_complete(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    expected = {
        ("post", "/api/auth/register"),
        ("post", "/api/admin/users"),
        ("post", "/api/admin/organizations/{org_id}/users"),
        ("get", "/api/admin/users"),
        ("get", "/api/admin/users/{user_id}"),
        ("delete", "/api/admin/users/{user_id}"),
        ("post", "/api/admin/organizations"),
        ("get", "/api/admin/organizations"),
        ("get", "/api/admin/organizations/{organization_id}"),
        ("get", "/api/operations/{operation_id}"),
        ("post", "/api/auth/password/setup-link"),
        ("post", "/api/auth/password/setup"),
        ("post", "/api/auth/login"),
        ("post", "/api/auth/password/replace-temporary"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
    }
    found = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert found == expected
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            responses = op["responses"]
            assert {"413", "500"} <= set(responses), (method, path)
            for status, response in responses.items():
                if int(status) >= 400 and "application/json" not in response.get("content", {}):
                    assert "application/problem+json" in response["content"], (path, status)
            if method in ("post", "delete"):
                names = {p["name"] for p in op.get("parameters", [])}
                assert "Idempotency-Key" in names, (method, path)
    assert "24 hours" in schema["info"]["description"]
    for code in STATUS_BY_CODE:
        assert f"`{code}`" in schema["info"]["description"]
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()

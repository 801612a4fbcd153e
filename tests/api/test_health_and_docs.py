"""Health, readiness, metrics, logs and the OpenAPI document."""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest
from sqlalchemy import text

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.model import OperationKind
from accord.testing import FakeIdentityProvider
from tests.api.conftest import ServeFactory, Tokens, bearer


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


# The published error catalogue, written down here rather than read from the table the
# document is built from (entrypoints/api/problems.py): a change to either is a change of the
# API's contract, and must be made on purpose in both.
ERROR_STATUSES = {
    "accord_error": 500,
    "already_member": 409,
    "invitation_not_found": 404,
    "invitation_revoked": 410,
    "invitation_expired": 410,
    "last_admin": 409,
    "limit_below_usage": 409,
    "mail_not_found": 404,
    "membership_not_found": 404,
    "owner_membership": 409,
    "api_token_not_found": 404,
    "configuration_invalid": 500,
    "constraint_violated": 500,
    "database_unavailable": 503,
    "database_conflict": 503,
    "email_confusable": 400,
    "email_exists": 409,
    "identity_exists": 409,
    "email_invalid": 422,
    "forbidden": 403,
    "hook_failed": 500,
    "idempotency_key_reused": 422,
    "scim_user_name_taken": 409,  # SCIM: answered as a SCIM Error (scimType uniqueness)
    "scim_group_name_taken": 409,  # SCIM: likewise
    "scim_group_not_found": 404,  # SCIM
    "idp_conflict": 409,
    "idp_error": 502,
    "idp_misconfigured": 502,
    "idp_not_found": 502,
    "idp_outcome_unknown": 503,
    "idp_rejected": 422,
    "idp_unavailable": 503,
    "internal_error": 500,
    "invalid_acting_user": 400,
    "invalid_credentials": 401,
    "invalid_input": 422,
    "mail_unavailable": 503,
    "method_not_allowed": 405,
    "not_found": 404,
    "operation_in_progress": 409,
    "operation_not_found": 404,
    "operation_pending": 202,
    "organization_exists": 409,
    "organization_full": 409,
    "organization_not_found": 404,
    "password_change_required": 403,
    "password_rejected": 422,
    "password_too_weak": 400,
    "payload_too_large": 413,
    "reconcile_running": 409,
    "retry_budget_exhausted": 503,
    "token_invalid": 400,
    "too_many_attempts": 429,
    "too_many_requests": 429,
    "unauthenticated": 401,
    "user_not_found": 404,
    "user_not_linked": 409,
    "user_suspended": 403,
    "user_deprovisioned": 409,
    "cursor_expired": 410,
    "webhook_not_found": 404,
    "webhook_target_refused": 422,
}


def sample(text: str, name: str) -> float:
    """The value of one sample (``name`` with its labels) in a Prometheus exposition."""
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.rsplit(" ", 1)[1])


async def open_operations(accord: Accord) -> dict[str, int]:
    async with accord.db.transaction() as conn:
        rows = await conn.execute(
            text("SELECT kind, count(*) FROM operations WHERE state = 'open' GROUP BY kind")
        )
        return dict(rows.all())


async def test_metrics_count_operations_and_read_open_ones_from_the_database(
    serve: ServeFactory, creds: Tokens, accord: Accord
) -> None:
    fake = FakeIdentityProvider()
    org = f"/api/admin/organizations/{creds.a}/users"
    headers = bearer(creds.platform)
    with serve(idp=fake) as url:  # counters of its own
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(2):
                first = {"email": creds.email("a"), "full_name": "A"}
                await client.post(org, json=first, headers=headers)
            fake.script("create", "unavailable")
            second = {"email": creds.email("b"), "full_name": "B"}
            assert (await client.post(org, json=second, headers=headers)).status_code == 202
            await client.get("/readyz")
            exposition = (await client.get("/metrics")).text
    in_database = await open_operations(accord)  # nothing runs operations on in these tests
    operations = 'accord_operations_total{kind="create_user",outcome="%s"}'
    assert sample(exposition, operations % "succeeded") == 1
    assert sample(exposition, operations % "email_exists") == 1
    assert sample(exposition, operations % "pending") == 1
    assert in_database.get("create_user", 0) >= 1  # the pending one, at least
    for kind in OperationKind:
        gauge = sample(exposition, f'accord_operations_open{{kind="{kind}"}}')
        assert gauge == in_database.get(kind.value, 0), kind
    idp_checks = 'accord_idp_call_duration_seconds_count{call="check",outcome="ok"}'
    assert sample(exposition, idp_checks) == 1
    assert sample(exposition, 'accord_operation_duration_seconds_count{kind="create_user"}') == 3
    assert 'route="/api/admin/organizations/{org_id}/users",status="202"' in exposition


async def test_access_logs_are_json_with_ids_and_no_secrets(
    local_client: httpx.AsyncClient, creds: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="accord.api")
    response = await local_client.post(
        "/api/admin/users",
        json={
            "email": creds.email("log"),
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
        ("post", "/api/auth/register/verify"),
        ("post", "/api/admin/users"),
        ("post", "/api/admin/organizations/{org_id}/users"),
        ("get", "/api/admin/users"),
        ("get", "/api/admin/users/{user_id}"),
        ("delete", "/api/admin/users/{user_id}"),
        ("post", "/api/admin/organizations"),
        ("get", "/api/admin/organizations"),
        ("get", "/api/admin/organizations/{organization_id}"),
        ("delete", "/api/admin/organizations/{organization_id}"),
        ("get", "/api/operations/{operation_id}"),
        ("get", "/api/admin/audit-events"),
        ("post", "/api/auth/password/setup-link"),
        ("post", "/api/auth/password/setup"),
        ("post", "/api/auth/login"),
        ("post", "/api/auth/password/replace-temporary"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("post", "/api/admin/organizations/{org_id}/invitations"),
        ("get", "/api/admin/organizations/{org_id}/invitations"),
        ("get", "/api/admin/invitations/{invitation_id}"),
        ("post", "/api/admin/invitations/{invitation_id}/resend"),
        ("delete", "/api/admin/invitations/{invitation_id}"),
        ("get", "/api/invitations/{token}"),
        ("post", "/api/invitations/accept"),
        # members, organization changes, the mailbox
        ("get", "/api/admin/organizations/{org_id}/members"),
        ("put", "/api/admin/organizations/{org_id}/members/{user_id}"),
        ("delete", "/api/admin/organizations/{org_id}/members/{user_id}"),
        ("patch", "/api/admin/organizations/{organization_id}"),
        ("get", "/api/admin/mailbox"),
        ("get", "/api/admin/mailbox/{message_id}"),
        ("patch", "/api/admin/users/{user_id}"),
        ("post", "/api/auth/email-change"),
        ("post", "/api/auth/email-change/confirm"),
        ("post", "/api/admin/users/{user_id}/suspend"),
        ("post", "/api/admin/users/{user_id}/reactivate"),
        ("get", "/api/auth/session"),
        # the change feed
        ("get", "/api/events"),
        # webhooks
        ("post", "/api/admin/webhooks"),
        ("get", "/api/admin/webhooks"),
        ("get", "/api/admin/webhooks/{webhook_id}"),
        ("patch", "/api/admin/webhooks/{webhook_id}"),
        ("delete", "/api/admin/webhooks/{webhook_id}"),
        ("post", "/api/admin/webhooks/{webhook_id}/rotate-secret"),
        ("post", "/api/admin/webhooks/{webhook_id}/replay"),
        ("get", "/api/admin/webhooks/{webhook_id}/deliveries"),
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
    description = schema["info"]["description"]
    assert "24 hours" in description
    catalogue = {
        code: int(status)
        for code, status in re.findall(r"^\| `([a-z0-9_]+)` \| ([0-9]{3}) \|", description, re.M)
    }
    assert catalogue == ERROR_STATUSES
    assert set(errors.error_codes()) <= set(catalogue), "every domain error is documented"
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()

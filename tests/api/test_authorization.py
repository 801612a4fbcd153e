"""The authorization matrix (G10): platform token, organization tokens, revoked and missing
tokens, and the public endpoints."""

from __future__ import annotations

from uuid import uuid4

import httpx

from accord.bootstrap import Accord
from accord.services import tokens
from tests.api.conftest import Tokens, bearer, problem


async def user_in(client: httpx.AsyncClient, creds: Tokens, org: object, email: str) -> str:
    response = await client.post(
        "/api/admin/users",
        json={"email": email, "full_name": "Someone", "organization_id": str(org)},
        headers=bearer(creds.platform),
    )
    assert response.status_code == 201, response.text
    return response.json()["user"]["id"]


def requests_for(creds: Tokens, user_b: str) -> list[tuple[str, str, dict | None]]:
    """Every request organization A's token may not make: B's organization and its member."""
    member = {"email": "new@example.com", "full_name": "New"}
    return [
        ("POST", f"/api/admin/organizations/{creds.b}/users", member),
        ("POST", "/api/admin/users", {**member, "organization_id": str(creds.a)}),
        ("POST", "/api/admin/organizations", {"name": "Mine"}),
        ("GET", f"/api/admin/organizations/{creds.b}", None),
        ("GET", f"/api/admin/users?organization_id={creds.b}", None),
        ("GET", f"/api/admin/users/{user_b}", None),
        ("DELETE", f"/api/admin/users/{user_b}", None),
        ("DELETE", f"/api/admin/organizations/{creds.b}", None),
        ("DELETE", f"/api/admin/organizations/{creds.a}", None),  # its own too: platform only
    ]


async def test_an_organization_token_cannot_touch_another_organization(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    user_b = await user_in(client, creds, creds.b, creds.email("b"))
    for method, url, body in requests_for(creds, user_b):
        response = await client.request(method, url, json=body, headers=bearer(creds.org_a))
        if url.endswith(f"/api/admin/users/{user_b}"):  # G10: another tenant's user looks missing
            problem(response, 404, "user_not_found")
        else:
            problem(response, 403, "forbidden")
    still_there = await client.get(f"/api/admin/users/{user_b}", headers=bearer(creds.org_b))
    assert still_there.json()["status"] == "pending"


async def test_reads_are_filtered_to_the_tokens_organization(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    await user_in(client, creds, creds.a, creds.email("a"))
    await user_in(client, creds, creds.b, creds.email("b"))
    users = await client.get("/api/admin/users", headers=bearer(creds.org_a))
    assert [u["email"] for u in users.json()["items"]] == [creds.email("a")]
    orgs = await client.get("/api/admin/organizations", headers=bearer(creds.org_a))
    assert [o["id"] for o in orgs.json()["items"]] == [str(creds.a)]
    everyone = await client.get(
        "/api/admin/users", params={"limit": 200}, headers=bearer(creds.platform)
    )
    assert {creds.email("a"), creds.email("b")} <= {u["email"] for u in everyone.json()["items"]}
    by_email = await client.get(
        "/api/admin/users", params={"email": creds.email("b")}, headers=bearer(creds.org_a)
    )
    assert by_email.json()["items"] == []


async def test_an_organization_token_manages_its_own_organization(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    created = await client.post(
        f"/api/admin/organizations/{creds.a}/users",
        json={"email": creds.email("mine"), "full_name": "Mine"},
        headers=bearer(creds.org_a),
    )
    assert created.status_code == 201
    user_id = created.json()["user"]["id"]
    org = await client.get(f"/api/admin/organizations/{creds.a}", headers=bearer(creds.org_a))
    assert org.json()["members"] == 1
    operation = created.json()["operation_id"]
    own = await client.get(f"/api/operations/{operation}", headers=bearer(creds.org_a))
    assert own.json()["state"] == "succeeded"
    problem(
        await client.get(f"/api/operations/{operation}", headers=bearer(creds.org_b)),
        404,
        "operation_not_found",
    )
    removed = await client.delete(f"/api/admin/users/{user_id}", headers=bearer(creds.org_a))
    assert removed.status_code == 200


ADMIN_REQUESTS = [
    ("GET", "/api/admin/users"),
    ("POST", "/api/admin/users"),
    ("GET", "/api/admin/organizations"),
    ("POST", "/api/admin/organizations"),
    ("GET", f"/api/admin/organizations/{uuid4()}"),
    ("POST", f"/api/admin/organizations/{uuid4()}/users"),
    ("GET", f"/api/admin/users/{uuid4()}"),
    ("DELETE", f"/api/admin/users/{uuid4()}"),
    ("DELETE", f"/api/admin/organizations/{uuid4()}"),
]


UNAUTHENTICATED = [
    {},
    bearer("acc_made-up-token"),
    bearer("nonsense"),
    {"Authorization": "Basic eDp5"},
]


async def test_admin_endpoints_need_a_valid_token(client: httpx.AsyncClient) -> None:
    for headers in UNAUTHENTICATED:
        for method, url in ADMIN_REQUESTS:
            response = await client.request(method, url, json={}, headers=headers)
            body = problem(response, 401, "unauthenticated")
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "acc_made-up-token" not in body["detail"]


async def test_a_revoked_token_is_refused_at_once(
    client: httpx.AsyncClient, creds: Tokens, accord: Accord
) -> None:
    token, record = await tokens.create_token(accord, name="short-lived")
    assert (await client.get("/api/admin/users", headers=bearer(token))).status_code == 200
    await tokens.revoke_token(accord, record["id"])
    problem(await client.get("/api/admin/users", headers=bearer(token)), 401, "unauthenticated")


async def test_public_endpoints_need_no_token(local_client: httpx.AsyncClient) -> None:
    client, email = local_client, f"pub-{uuid4().hex[:10]}@example.com"
    registered = await client.post(
        "/api/auth/register",
        json={"email": email, "password": "a good password", "full_name": "Pub"},
    )
    assert registered.status_code == 201, registered.text
    operation = registered.json()["operation_id"]
    assert (await client.get(f"/api/operations/{operation}")).json()["kind"] == "register"
    link = await client.post("/api/auth/password/setup-link", json={"email": email})
    assert link.status_code == 202
    login = await client.post(
        "/api/auth/login", json={"email": email, "password": "a good password"}
    )
    assert login.status_code == 200
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        assert (await client.get(path)).status_code == 200, path

"""Registration and the local identity provider's password endpoints, over HTTP."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import httpx
import pytest

from accord.bootstrap import Accord
from accord.services import credentials, tokens
from tests.api.conftest import Tokens, bearer, problem

PASSWORD = "a good long password"


@pytest.fixture
def tag() -> str:
    """Names of this test's own: the module shares one database."""
    return uuid.uuid4().hex[:10]


def registration(tag: str, **changes: Any) -> dict[str, Any]:
    return {
        "email": f"reg-{tag}@example.com",
        "password": PASSWORD,
        "full_name": "Reggie",
        "organization_name": f"Reggie's Garage {tag}",
        **changes,
    }


async def test_registration_yields_one_user_and_one_organization(
    local_client: httpx.AsyncClient,
    tag: str,
) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await local_client.post("/api/auth/register", json=registration(tag), headers=key)
    again = await local_client.post("/api/auth/register", json=registration(tag), headers=key)
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json()
    result = first.json()
    assert (
        result["user"]["status"] == "active" and result["user"]["email"] == f"reg-{tag}@example.com"
    )
    assert result["organization"]["slug"] == f"reggie-s-garage-{tag}"
    assert result["organization"]["kind"] == "personal"
    assert PASSWORD not in first.text
    other = await local_client.post(
        "/api/auth/register", json=registration(tag, password="another password"), headers=key
    )
    problem(other, 422, "idempotency_key_reused")
    duplicate = await local_client.post("/api/auth/register", json=registration(tag))
    problem(duplicate, 409, "email_exists")


async def test_a_registration_with_a_weak_password_is_rejected(
    local_client: httpx.AsyncClient,
    tag: str,
) -> None:
    weak = await local_client.post("/api/auth/register", json=registration(tag, password="short"))
    problem(weak, 400, "password_too_weak")
    empty = await local_client.post("/api/auth/register", json=registration(tag, password=""))
    assert problem(empty, 422, "invalid_input")["errors"][0]["field"] == "body.password"


async def test_a_setup_link_request_always_answers_202(
    local_client: httpx.AsyncClient, tag: str
) -> None:
    await local_client.post("/api/auth/register", json=registration(tag))
    for email in (f"reg-{tag}@example.com", "nobody@example.com", "not an address"):
        response = await local_client.post("/api/auth/password/setup-link", json={"email": email})
        assert response.status_code == 202
        assert response.json()["detail"].startswith("If an account has this address")


async def test_a_setup_link_sets_the_password_once(
    local_client: httpx.AsyncClient, creds: Tokens, accord: Accord
) -> None:
    created = await local_client.post(
        "/api/admin/users",
        json={"email": creds.email("inv"), "full_name": "Inv", "organization_id": str(creds.a)},
        headers=bearer(creds.platform),
    )
    token, _ = await credentials.issue_password_setup(accord, UUID(created.json()["user"]["id"]))
    weak = await local_client.post(
        "/api/auth/password/setup", json={"token": token, "new_password": "short"}
    )
    problem(weak, 400, "password_too_weak")
    done = await local_client.post(
        "/api/auth/password/setup", json={"token": token, "new_password": PASSWORD}
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "active"
    used = await local_client.post(
        "/api/auth/password/setup", json={"token": token, "new_password": PASSWORD}
    )
    problem(used, 400, "token_invalid")


async def test_login_returns_a_short_lived_signed_token(
    local_client: httpx.AsyncClient, accord: Accord, tag: str
) -> None:
    registered = await local_client.post("/api/auth/register", json=registration(tag))
    login = await local_client.post(
        "/api/auth/login", json={"email": f"REG-{tag}@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    result = login.json()
    assert result["token_type"] == "Bearer" and 0 < result["expires_in"] <= 900
    claims = tokens.verify_login_token(accord, result["access_token"])
    assert claims["sub"] == registered.json()["user"]["id"] == result["user"]["id"]
    wrong = await local_client.post(
        "/api/auth/login", json={"email": f"reg-{tag}@example.com", "password": "not the password"}
    )
    body = problem(wrong, 401, "invalid_credentials")
    assert "not the password" not in wrong.text and body["detail"]


async def test_a_temporary_password_must_be_replaced_before_login(
    local_client: httpx.AsyncClient, creds: Tokens
) -> None:
    created = await local_client.post(
        "/api/admin/users",
        json={
            "email": creds.email("temp"),
            "full_name": "Temp",
            "organization_id": str(creds.a),
            "credential": "temp_password",
        },
        headers=bearer(creds.platform),
    )
    temporary = created.json()["temporary_password"]
    first = {"email": creds.email("temp"), "password": temporary}
    problem(await local_client.post("/api/auth/login", json=first), 403, "password_change_required")
    replacement = {
        "email": creds.email("temp"),
        "temporary_password": temporary,
        "new_password": PASSWORD,
    }
    same = await local_client.post(
        "/api/auth/password/replace-temporary", json={**replacement, "new_password": temporary}
    )
    problem(same, 422, "password_rejected")
    replaced = await local_client.post("/api/auth/password/replace-temporary", json=replacement)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["require_password_change"] is False
    again = await local_client.post("/api/auth/password/replace-temporary", json=replacement)
    problem(again, 401, "invalid_credentials")
    login = await local_client.post(
        "/api/auth/login", json={"email": creds.email("temp"), "password": PASSWORD}
    )
    assert login.status_code == 200


async def test_sign_in_is_refused_when_another_provider_handles_it(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/auth/login", json={"email": "a@example.com", "password": PASSWORD}
    )
    problem(response, 403, "forbidden")
    replaced = await client.post(
        "/api/auth/password/replace-temporary",
        json={"email": "a@example.com", "temporary_password": "x", "new_password": PASSWORD},
    )
    problem(replaced, 403, "forbidden")

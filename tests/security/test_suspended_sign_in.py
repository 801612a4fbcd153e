"""A suspended user of the built-in identity provider cannot sign in, and the sessions they had
stop working at once, for good: a reactivation gives sign-in back, not the old sessions."""

from __future__ import annotations

from uuid import UUID, uuid4

import httpx

from accord.bootstrap import Accord
from accord.domain.model import CredentialMode
from accord.services import credentials
from accord.services.provisioning import NewUser, create_user
from accord.services.suspension import reactivate_user, suspend_user
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.security import verifying_server
from tests.security.verifying_server import PASSWORD

settings, http = verifying_server.settings, verifying_server.http


async def signed_up(http: httpx.AsyncClient, accord: Accord) -> tuple[str, str]:
    """A user with a password of their own: (user id, e-mail)."""
    email = f"s-{uuid4().hex[:10]}@example.com"
    org = await new_org(accord, f"Org {email}")
    made = await create_user(
        accord, NewUser(email, "Sue", org, credential=CredentialMode.INVITE), caller=PLATFORM
    )
    token, _ = await credentials.issue_password_setup(accord, UUID(made["user"]["id"]))
    chosen = await http.post(
        "/api/auth/password/setup", json={"token": token, "new_password": PASSWORD}
    )
    assert chosen.status_code == 200, chosen.text
    return made["user"]["id"], email


async def login(http: httpx.AsyncClient, email: str) -> httpx.Response:
    return await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})


async def session(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.get("/api/auth/session", headers={"Authorization": f"Bearer {token}"})


async def test_suspension_refuses_sign_in_and_ends_the_session_for_good(
    http: httpx.AsyncClient, accord: Accord
) -> None:
    user_id, email = await signed_up(http, accord)
    first = await login(http, email)
    assert first.status_code == 200, first.text
    token = first.json()["access_token"]
    assert (await session(http, token)).json()["id"] == user_id

    await suspend_user(accord, user_id, caller=PLATFORM)
    assert (
        await scalar(accord, "SELECT enabled FROM local_identities WHERE id = :i", i=user_id)
        is False
    )
    refused = await login(http, email)
    assert refused.status_code == 403 and refused.json()["code"] == "user_suspended"
    assert "access_token" not in refused.text
    ended = await session(http, token)
    assert ended.status_code == 403 and ended.json()["code"] == "user_suspended"
    wrong = await http.post("/api/auth/login", json={"email": email, "password": "not it at all"})
    assert wrong.status_code == 401  # a wrong password says nothing about the suspension

    result = await reactivate_user(accord, user_id, caller=PLATFORM)
    assert result["user"]["status"] == "active"
    old = await session(http, token)
    assert old.status_code == 401 and old.json()["code"] == "unauthenticated"
    again = await login(http, email)
    assert again.status_code == 200, again.text
    fresh = await session(http, again.json()["access_token"])
    assert fresh.status_code == 200 and fresh.json()["status"] == "active"


async def test_a_session_needs_a_valid_login_token(http: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eA=="}):
        answer = await http.get("/api/auth/session", headers=headers)
        assert answer.status_code == 401 and answer.json()["code"] == "unauthenticated"

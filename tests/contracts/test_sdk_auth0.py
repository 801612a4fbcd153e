"""The official auth0-python SDK (v6) against the emulator over real HTTP: proof that the emulator
speaks Auth0's dialect. Wired as docs/idp/auth0.md#the-auth0-python-sdk explains:
``GetToken(..., protocol="http")`` for the token and ``Auth0(base_url=..., token=...)`` for the
Management API. The last tests send raw requests for what the SDK hides (array shape, paging cap,
headers, search lag)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from auth0.authentication import GetToken
from auth0.authentication.exceptions import Auth0Error
from auth0.management import Auth0
from auth0.management.errors import ConflictError, NotFoundError

from accord.emulators.auth0 import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_CONNECTION,
    create_app,
)
from accord.testing.servers import serve_in_thread
from tests.patience import PATIENCE

# v6 retries 409 (and 429, 5xx) unless told not to (docs/idp/auth0.md#the-auth0-python-sdk)
NO_RETRIES: Any = {"max_retries": 0}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    app = create_app()
    with serve_in_thread(app) as url:
        app.state.url = url
        yield app


@pytest.fixture(scope="module")
def host(emulator: Any) -> str:
    return emulator.state.url.removeprefix("http://")


@pytest.fixture(scope="module")
def token(host: str) -> str:
    get_token = GetToken(
        host, DEFAULT_CLIENT_ID, client_secret=DEFAULT_CLIENT_SECRET, protocol="http"
    )
    return get_token.client_credentials(f"https://{host}/api/v2/")["access_token"]


@pytest.fixture(scope="module")
def auth0(emulator: Any, token: str) -> Iterator[Auth0]:
    with httpx.Client(timeout=PATIENCE) as http:
        yield Auth0(base_url=f"{emulator.state.url}/api/v2", token=lambda: token, httpx_client=http)


@pytest.fixture
def raw(emulator: Any, token: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=emulator.state.url, headers=headers) as client:
        yield client


def test_get_token_with_a_wrong_secret_raises_auth0_error(host: str) -> None:
    get_token = GetToken(host, DEFAULT_CLIENT_ID, client_secret="wrong", protocol="http")
    with pytest.raises(Auth0Error) as caught:
        get_token.client_credentials(f"https://{host}/api/v2/")
    assert (caught.value.status_code, caught.value.error_code) == (401, "access_denied")


def test_the_token_endpoint_also_takes_a_form_body(emulator: Any, host: str) -> None:
    # The SDK's TokenProvider posts form-encoded; GetToken posts JSON (the fixture above)
    # (docs/idp/auth0.md#management-api-token).
    form = {
        "grant_type": "client_credentials",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "audience": f"https://{host}/api/v2/",
    }
    answer = httpx.post(f"{emulator.state.url}/oauth/token", data=form)
    assert answer.status_code == 200
    assert answer.json()["token_type"] == "Bearer" and answer.json()["expires_in"] == 86400


def test_create_get_find_update_delete(auth0: Auth0) -> None:
    created = auth0.users.create(
        connection=DEFAULT_CONNECTION,
        email="Sdk.Ada@Example.com",
        password="Passw0rd!x",
        user_id="5dk0ada",
        app_metadata={"org_id": "org_1"},
    )
    assert created.user_id == "auth0|5dk0ada"
    assert created.email == "sdk.ada@example.com"  # docs/idp/auth0.md#stored-e-mail-case
    assert auth0.users.get("auth0|5dk0ada").app_metadata == {"org_id": "org_1"}  # %7C in path
    found = auth0.users.list_users_by_email(email="sdk.ada@example.com")
    assert [u.user_id for u in found] == ["auth0|5dk0ada"]
    updated = auth0.users.update(
        "auth0|5dk0ada", user_metadata={"a": 1}, password="N3w!pass", connection=DEFAULT_CONNECTION
    )
    assert updated.user_metadata == {"a": 1}
    auth0.users.delete("auth0|5dk0ada")
    auth0.users.delete("auth0|5dk0ada")  # 204 again (docs/idp/auth0.md#delete-is-idempotent)
    with pytest.raises(NotFoundError):
        auth0.users.get("auth0|5dk0ada", request_options=NO_RETRIES)


def test_a_duplicate_email_is_a_409_conflict(auth0: Auth0) -> None:
    auth0.users.create(connection=DEFAULT_CONNECTION, email="sdk.dup@example.com", password="x" * 9)
    with pytest.raises(ConflictError) as caught:
        auth0.users.create(
            connection=DEFAULT_CONNECTION,
            email="SDK.Dup@example.com",  # the same user (docs/idp/auth0.md#stored-e-mail-case)
            password="x" * 9,
            request_options=NO_RETRIES,
        )
    assert caught.value.status_code == 409
    assert caught.value.body["errorCode"] == "auth0_idp_error"


def test_the_pager_walks_every_page(auth0: Auth0) -> None:
    for i in range(5):
        email = f"sdk.list{i}@example.com"
        auth0.users.create(connection=DEFAULT_CONNECTION, email=email, password="x" * 9)
    pager = auth0.users.list(q="email:sdk.list*", per_page=2, search_engine="v3")
    assert sorted(u.email for u in pager) == [f"sdk.list{i}@example.com" for i in range(5)]


def test_an_export_job_runs_and_its_file_downloads(auth0: Auth0) -> None:
    auth0.users.create(
        connection=DEFAULT_CONNECTION, email="sdk.export@example.com", password="x" * 9
    )
    job = auth0.jobs.users_exports.create(format="json", fields=[{"name": "email"}])
    assert job.status == "pending" and job.type == "users_export"
    done = auth0.jobs.get(job.id)
    assert done.status == "completed"
    lines = gzip.decompress(httpx.get(done.location).content).splitlines()
    assert {"email": "sdk.export@example.com"} in [json.loads(line) for line in lines]


# -- what the SDK hides -------------------------------------------------------------------------


def test_list_is_a_bare_array_without_include_totals(raw: httpx.Client) -> None:
    # A bare array unless include_totals=true (docs/idp/auth0.md#listing-and-paging-limits)
    assert isinstance(raw.get("/api/v2/users").json(), list)
    totals = raw.get("/api/v2/users", params={"include_totals": "true"}).json()
    assert set(totals) == {"start", "limit", "length", "total", "users"}


def test_paging_stops_at_1000_results(raw: httpx.Client) -> None:
    assert raw.get("/api/v2/users", params={"page": 9, "per_page": 100}).status_code == 200
    answer = raw.get("/api/v2/users", params={"page": 10, "per_page": 100})
    assert answer.status_code == 400 and answer.json()["errorCode"] == "invalid_paging"


def test_every_response_carries_rate_limit_headers(raw: httpx.Client) -> None:
    for answer in (raw.get("/api/v2/users"), raw.get("/api/v2/users/auth0%7Cnobody")):
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(
            answer.headers
        )  # docs/idp/auth0.md#rate-limits


def test_a_bad_token_and_a_weak_password_answer_in_auth0_shape(raw: httpx.Client) -> None:
    answer = raw.get("/api/v2/users", headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401
    assert answer.json() == {
        "statusCode": 401,
        "error": "Unauthorized",
        "message": "Invalid token",
        "attributes": {"error": "Invalid token"},
    }
    body = {"connection": DEFAULT_CONNECTION, "email": "weak@example.com", "password": "abc"}
    answer = raw.post("/api/v2/users", json=body)
    # The weak-password body has no errorCode (docs/idp/auth0.md#error-bodies).
    assert answer.status_code == 400 and "errorCode" not in answer.json()
    assert answer.json()["message"] == "PasswordStrengthError: Password is too weak"


def test_users_by_email_is_case_sensitive_and_search_lags(emulator: Any, raw: httpx.Client) -> None:
    emulator.state.tenant.seed_user("Lag@Example.com", connection="google-oauth2")
    by_email = raw.get("/api/v2/users-by-email", params={"email": "lag@example.com"})
    assert by_email.json() == []  # it kept its case (docs/idp/auth0.md#lookup-by-e-mail)
    faults = emulator.state.faults
    faults.configure(faults.config.merged({"search_lag_ms": 60_000}))
    try:
        search = raw.get("/api/v2/users", params={"q": 'email:"lag@example.com"'})
        assert search.json() == []  # docs/idp/auth0.md#search-is-eventually-consistent
    finally:
        faults.configure(faults.config.merged({"search_lag_ms": 0}))
    search = raw.get("/api/v2/users", params={"q": 'email:"lag@example.com"'})
    assert [u["email"] for u in search.json()] == ["Lag@Example.com"]  # search folds case


def test_a_password_cannot_change_with_the_email(raw: httpx.Client) -> None:
    body = {"connection": DEFAULT_CONNECTION, "email": "both@example.com", "password": "x" * 9}
    user_id = raw.post("/api/v2/users", json=body).json()["user_id"]
    answer = raw.patch(
        f"/api/v2/users/{user_id}", json={"email": "both2@example.com", "password": "y" * 9}
    )
    assert answer.status_code == 400  # docs/idp/auth0.md#password-and-e-mail-in-separate-updates


def test_blocked_is_set_and_cleared_by_update_and_read_back(auth0: Auth0) -> None:
    # What Auth0Provider.set_enabled sends: PATCH /users/{id} {"blocked": bool}
    # (docs/idp/auth0.md#blocking-users).
    auth0.users.create(
        connection=DEFAULT_CONNECTION,
        email="sdk.blocked@example.com",
        password="Passw0rd!x",
        user_id="5dkb10c",
    )
    assert not auth0.users.get("auth0|5dkb10c").blocked
    assert auth0.users.update("auth0|5dkb10c", blocked=True).blocked is True
    assert auth0.users.get("auth0|5dkb10c").blocked is True
    [found] = auth0.users.list_users_by_email(email="sdk.blocked@example.com")
    assert found.blocked is True
    assert auth0.users.update("auth0|5dkb10c", blocked=False).blocked is False
    assert auth0.users.get("auth0|5dkb10c").blocked is False
    auth0.users.delete("auth0|5dkb10c")

"""How Keycloak's answers the emulator does not give are read: each decides whether accord
retries later (ProviderUnavailable), tells the operator what to fix (ProviderMisconfigured), or
tells the caller why (RemoteRejected), and with Keycloak's own words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from accord.adapters.idp.keycloak_session import KeycloakSession
from accord.domain.errors import (
    OutcomeUnknown,
    ProviderMisconfigured,
    ProviderUnavailable,
    RemoteNotFound,
    RemoteRejected,
)
from tests.patience import PATIENCE

TOKEN = httpx.Response(200, json={"access_token": "t", "expires_in": 300})
Answer = Callable[[httpx.Request], httpx.Response]


def session(token: Answer | httpx.Response, admin: Answer | httpx.Response = TOKEN, **kw: Any):
    """A session whose token endpoint and admin API give these answers."""

    def route(request: httpx.Request) -> httpx.Response:
        answer = token if request.url.path.endswith("/token") else admin
        return answer(request) if callable(answer) else answer

    return KeycloakSession(
        "http://kc.test",
        "acme",
        "accord",
        SecretStr("s"),
        timeout_seconds=PATIENCE,
        transport=httpx.MockTransport(route),
        **kw,
    )


async def test_a_token_endpoint_that_is_not_keycloaks_is_named() -> None:
    api = session(httpx.Response(200, text="<html>a portal</html>"))
    with pytest.raises(ProviderMisconfigured, match="is the server URL Keycloak's"):
        await api.request("GET", "/users/count")
    await api.aclose()


@pytest.mark.parametrize(
    ("answer", "retried"),
    [
        (httpx.Response(503, text="maintenance"), True),
        (httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"), True),
        (httpx.Response(400, json={"error": "invalid_scope", "error_description": "no"}), False),
        (httpx.Response(400, text="not json"), False),
    ],
)
async def test_a_token_refusal_is_retried_only_when_keycloak_is_busy(
    answer: httpx.Response, retried: bool
) -> None:
    api = session(answer)
    with pytest.raises((ProviderUnavailable, ProviderMisconfigured)) as caught:
        await api.request("GET", "/users/count")
    assert isinstance(caught.value, ProviderUnavailable) is retried
    if not retried:
        assert "token endpoint answered 400" in caught.value.message
    if answer.status_code == 429:
        assert caught.value.retry_after == 7
    await api.aclose()


async def test_a_token_keycloak_rejects_twice_means_the_client_is_in_another_realm() -> None:
    api = session(TOKEN, httpx.Response(401, json={"error": "HTTP 401 Unauthorized"}))
    with pytest.raises(ProviderMisconfigured, match="must belong to realm 'acme'"):
        await api.request("GET", "/users/count")
    await api.aclose()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"error": "Realm not found."}, ProviderMisconfigured),
        ({"error": "User not found"}, RemoteNotFound),
    ],
)
async def test_a_missing_realm_is_misconfiguration_and_a_missing_user_is_not(
    body: dict[str, str], error: type[Exception]
) -> None:
    api = session(TOKEN, httpx.Response(404, json=body))
    with pytest.raises(error):
        await api.request("GET", "/users/x")
    await api.aclose()


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (
            httpx.Response(
                400,
                json={
                    "errors": [
                        {"field": "email", "errorMessage": "invalidEmailMessage"},
                        {"field": "lastName", "errorMessage": "error-user-attribute-required"},
                    ]
                },
            ),
            "email: invalidEmailMessage; lastName: error-user-attribute-required",
        ),
        (httpx.Response(400, text="a proxy's page"), "a proxy's page"),
        (httpx.Response(400), "Bad Request"),
    ],
)
async def test_every_rejection_says_why_in_keycloaks_words(
    answer: httpx.Response, says: str
) -> None:
    api = session(TOKEN, answer)
    with pytest.raises(RemoteRejected) as caught:
        await api.request("POST", "/users", write=True, json={})
    assert caught.value.message == f"Keycloak answered 400: {says}"
    await api.aclose()


async def test_a_server_url_without_a_usable_scheme_is_misconfiguration() -> None:
    api = KeycloakSession("kc.test", "acme", "accord", SecretStr("s"))
    with pytest.raises(ProviderMisconfigured, match="server URL is not usable"):
        await api.request("GET", "/users/count")
    await api.aclose()


async def test_a_write_sent_but_unanswered_is_outcome_unknown() -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    api = session(TOKEN, drop)
    with pytest.raises(OutcomeUnknown):
        await api.request("POST", "/users", write=True, json={})
    await api.aclose()


async def test_a_shared_client_stays_open_for_its_owner() -> None:
    shared = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: TOKEN))
    api = KeycloakSession("http://kc.test", "acme", "accord", SecretStr("s"), client=shared)
    await api.request("GET", "/users/count")
    await api.aclose()
    assert not shared.is_closed
    assert (await shared.get("http://kc.test/")).status_code == 200
    await shared.aclose()

"""Auth0's answers the emulator does not give: each decides whether accord retries, tells the
operator what to fix, or lists users, and the export listing is whole or it raises."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable

import httpx
import pytest

from accord.adapters.idp.auth0 import DEFAULT_CONNECTION, Auth0Provider
from accord.domain.errors import ProviderMisconfigured, ProviderUnavailable
from tests.contracts.test_auth0_adapter import mocked
from tests.patience import PATIENCE

EXPORT = "http://auth0.test/exports/users.json.gz"


def record(remote_id: str, email: str) -> dict[str, object]:
    return {
        "user_id": remote_id,
        "email": email,
        "identities": [{"connection": DEFAULT_CONNECTION}],
    }


def exporting(download: Callable[[], httpx.Response]) -> Auth0Provider:
    """A provider whose export job completes at once and whose file is ``download()``."""

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/jobs/users-exports":
            return httpx.Response(201, json={"id": "job_1", "status": "pending"})
        if request.url.path == "/api/v2/jobs/job_1":
            return httpx.Response(
                200, json={"id": "job_1", "status": "completed", "location": EXPORT}
            )
        return download()

    return mocked(route)


async def test_an_export_file_with_blank_lines_and_no_final_newline_lists_everyone() -> None:
    ours = uuid.UUID(int=7)
    lines = [
        json.dumps(record(f"auth0|{ours.hex}", "ada@example.com")),
        "",
        json.dumps(record("auth0|" + "z" * 32, "bob@example.com")),  # 32 characters, not hex
    ]
    data = gzip.compress("\n".join(lines).encode())
    idp = exporting(lambda: httpx.Response(200, stream=httpx.ByteStream(data)))
    listed = [user async for user in idp.iter_users()]
    assert [(u.email, u.accord_user_id) for u in listed] == [
        ("ada@example.com", str(ours)),
        ("bob@example.com", None),  # not an id accord chose: never taken for one of accord's
    ]
    await idp.aclose()


async def test_an_export_download_refused_raises_instead_of_listing_nobody() -> None:
    idp = exporting(lambda: httpx.Response(403, text="<Error>Request has expired</Error>"))
    with pytest.raises(ProviderUnavailable, match="export download answered 403"):
        _ = [user async for user in idp.iter_users()]
    await idp.aclose()


async def test_a_grant_that_is_not_enabled_is_named_with_its_fix() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        body = {"error": "unauthorized_client", "error_description": "Grant type not allowed"}
        return httpx.Response(403, json=body)

    idp = Auth0Provider(
        base_url="http://auth0.test",
        client_id="cid",
        client_secret="csecret",
        transport=httpx.MockTransport(route),
    )
    with pytest.raises(ProviderMisconfigured, match="enable the Client Credentials grant"):
        await idp.check()
    await idp.aclose()


async def test_a_base_url_that_is_not_http_is_misconfiguration() -> None:
    idp = Auth0Provider(base_url="auth0.example.com", client_id="cid", client_secret="s")
    with pytest.raises(ProviderMisconfigured, match="is not an http"):
        await idp.check()
    await idp.aclose()


async def test_a_429_with_an_unreadable_reset_is_retried_without_a_wait() -> None:
    idp = mocked(lambda _: httpx.Response(429, headers={"x-ratelimit-reset": "soon"}))
    with pytest.raises(ProviderUnavailable) as caught:
        await idp.find_by_email("ada@example.com")
    assert caught.value.retry_after is None  # the worker's own backoff decides
    await idp.aclose()


async def test_a_shared_client_stays_open_for_its_owner() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 86400})
        return httpx.Response(200, json=[])

    shared = httpx.AsyncClient(transport=httpx.MockTransport(route), timeout=PATIENCE)
    idp = Auth0Provider(
        base_url="http://auth0.test", client_id="cid", client_secret="s", client=shared
    )
    await idp.check()
    await idp.aclose()
    assert not shared.is_closed
    assert (await shared.get("http://auth0.test/api/v2/users-by-email")).json() == []
    await shared.aclose()

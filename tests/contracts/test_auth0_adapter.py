"""Auth0Provider beyond the shared contract: tokens, error mapping, e-mail case, the export."""

from __future__ import annotations

import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from accord.adapters.idp.auth0 import Auth0Provider
from accord.config import Auth0Settings
from accord.domain.errors import (
    OutcomeUnknown,
    ProviderMisconfigured,
    ProviderUnavailable,
    RemoteConflict,
)
from accord.domain.ports import NewRemoteUser
from accord.emulators.auth0 import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    Auth0Tenant,
    create_app,
)
from accord.emulators.faults import FaultConfig, FaultInjector
from accord.testing.servers import serve_in_thread
from tests.patience import HANG, PATIENCE, Hurried


def new_user(email: str, password: str | None = "correct horse battery") -> NewRemoteUser:
    return NewRemoteUser(uuid.uuid4(), email, "Ada Lovelace", password)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Emulator:
    app: Any
    url: str

    @property
    def tenant(self) -> Auth0Tenant:
        return self.app.state.tenant

    @property
    def faults(self) -> FaultInjector:
        return self.app.state.faults


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    app = create_app(faults=FaultConfig(hang_seconds=HANG))
    with serve_in_thread(app) as url:
        yield Emulator(app, url)


@pytest.fixture
async def make_provider(emulator: Emulator) -> AsyncIterator[Callable[..., Auth0Provider]]:
    made: list[Auth0Provider] = []

    def make(**options: Any) -> Auth0Provider:
        defaults = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}
        made.append(
            Auth0Provider(**{"base_url": emulator.url, "timeout": PATIENCE, **defaults, **options})
        )
        return made[-1]

    yield make
    for provider in made:
        await provider.aclose()


def mocked(handler: Callable[[httpx.Request], httpx.Response]) -> Auth0Provider:
    """A provider whose API answers come from ``handler``; /oauth/token always succeeds."""

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 86400})
        return handler(request)

    return Auth0Provider(
        base_url="http://auth0.test",
        client_id="cid",
        client_secret="csecret",
        transport=httpx.MockTransport(route),
    )


# -- tokens ------------------------------------------------------------------------------------


async def test_the_token_is_cached_and_refreshed_ten_seconds_before_it_expires(
    emulator: Emulator, make_provider: Callable[..., Auth0Provider]
) -> None:
    clock = FakeClock()
    idp = make_provider(clock=clock)
    await idp.check()
    await idp.find_by_email("ada@example.com")
    assert emulator.tenant.tokens_issued == 1
    clock.now += emulator.tenant.token_ttl_seconds - 11
    await idp.find_by_email("ada@example.com")
    assert emulator.tenant.tokens_issued == 1
    clock.now += 1
    await idp.find_by_email("ada@example.com")
    assert emulator.tenant.tokens_issued == 2


async def test_a_revoked_token_is_replaced_once_transparently(
    emulator: Emulator, make_provider: Callable[..., Auth0Provider]
) -> None:
    idp = make_provider()
    created = await idp.create(new_user("ada@example.com"))
    emulator.tenant.tokens.clear()  # Auth0 answers 401 "Invalid token" from now on
    assert (await idp.get(created.remote_id)).email == "ada@example.com"
    assert emulator.tenant.tokens_issued == 2


async def test_wrong_credentials_are_misconfiguration_with_a_hint_and_without_the_secret(
    make_provider: Callable[..., Auth0Provider],
) -> None:
    secret = "s3cret-that-must-not-leak"
    idp = make_provider(client_secret=secret)
    with pytest.raises(ProviderMisconfigured) as caught:
        await idp.check()
    message = str(caught.value)
    assert "ACCORD_AUTH0__CLIENT_SECRET" in message and DEFAULT_CLIENT_ID in message
    assert "access_denied" in message
    assert secret not in message + repr(caught.value.as_dict()) + repr(caught.value.args)


async def test_a_wrong_audience_names_the_audience(
    make_provider: Callable[..., Auth0Provider],
) -> None:
    idp = make_provider(audience="https://someone-else.auth0.com/api/v2/")
    with pytest.raises(ProviderMisconfigured, match=re.escape("someone-else.auth0.com")):
        await idp.check()


async def test_a_missing_scope_is_misconfiguration(
    emulator: Emulator, make_provider: Callable[..., Auth0Provider]
) -> None:
    emulator.tenant.scopes = frozenset({"read:users"})
    with pytest.raises(ProviderMisconfigured, match="create:users"):
        await make_provider().create(new_user("ada@example.com"))


def test_settings_name_what_is_missing_and_build_the_audience_from_the_domain() -> None:
    with pytest.raises(ProviderMisconfigured, match="CLIENT_ID, ACCORD_AUTH0__CLIENT_SECRET"):
        Auth0Provider.from_settings(Auth0Settings(domain="tenant.eu.auth0.com"))
    settings = Auth0Settings(
        domain="https://tenant.eu.auth0.com/", client_id="cid", client_secret=SecretStr("s")
    )
    idp = Auth0Provider.from_settings(settings)
    assert idp._base_url == "https://tenant.eu.auth0.com"
    assert idp._audience == "https://tenant.eu.auth0.com/api/v2/"


# -- error mapping -----------------------------------------------------------------------------


async def test_429_is_unavailable_with_retry_after_from_the_reset_header(
    emulator: Emulator, make_provider: Callable[..., Auth0Provider]
) -> None:
    idp = make_provider()
    await idp.check()
    emulator.faults.script("users_by_email", "rate_limited")
    with pytest.raises(ProviderUnavailable) as caught:
        await idp.find_by_email("ada@example.com")
    assert not isinstance(caught.value, OutcomeUnknown)
    assert caught.value.retry_after is not None and 0 <= caught.value.retry_after <= 2


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"x-ratelimit-reset": "+30"}, 30), ({"retry-after": "7", "x-ratelimit-reset": "+30"}, 7)],
)
async def test_retry_after_prefers_retry_after_then_the_epoch_reset(
    headers: dict[str, str], expected: float
) -> None:
    if "+" in headers["x-ratelimit-reset"]:
        headers = {**headers, "x-ratelimit-reset": str(int(time.time()) + 30)}
    idp = mocked(lambda _: httpx.Response(429, headers=headers, json={"statusCode": 429}))
    with pytest.raises(ProviderUnavailable) as caught:
        await idp.get("auth0|abc")
    assert caught.value.retry_after == pytest.approx(expected, abs=1.5)
    await idp.aclose()


async def test_a_timeout_on_create_is_outcome_unknown_and_nothing_was_stored(
    emulator: Emulator, make_provider: Callable[..., Auth0Provider]
) -> None:
    hurried = Hurried()
    idp = make_provider(transport=hurried)
    await idp.check()
    emulator.faults.script("create_user", "timeout")
    hurried.hurry("POST", "/api/v2/users")
    with pytest.raises(OutcomeUnknown):
        await idp.create(new_user("ada@example.com"))
    assert await idp.find_by_email("ada@example.com") is None  # this fault does no work
    assert (await idp.create(new_user("ada@example.com"))).email == "ada@example.com"


async def test_a_timeout_on_a_read_is_only_unavailable(
    emulator: Emulator, make_provider: Callable[..., Auth0Provider]
) -> None:
    hurried = Hurried()
    idp = make_provider(transport=hurried)
    await idp.check()
    emulator.faults.script("get_user", "timeout")
    hurried.hurry("GET", "/api/v2/users/.+")
    with pytest.raises(ProviderUnavailable) as caught:
        await idp.get("auth0|abc")
    assert not isinstance(caught.value, OutcomeUnknown)


async def test_a_ghost_create_is_adopted_through_its_id(
    emulator: Emulator, make_provider: Callable[..., Auth0Provider]
) -> None:
    hurried = Hurried()
    idp = make_provider(transport=hurried)
    user = new_user("ada@example.com")
    emulator.faults.configure(emulator.faults.config.merged({"ghost_hang": True}))
    emulator.faults.script("create_user", "ghost")
    hurried.hurry("POST", "/api/v2/users")
    with pytest.raises(OutcomeUnknown):
        await idp.create(user)
    with pytest.raises(RemoteConflict):  # the retried create is recognized, not duplicated
        await idp.create(user)
    adopted = await idp.get(f"auth0|{user.user_id.hex}")
    assert adopted.accord_user_id == str(user.user_id)


@pytest.mark.parametrize(("method", "outcome_unknown"), [("GET", False), ("POST", True)])
async def test_a_504_is_outcome_unknown_only_for_writes(method: str, outcome_unknown: bool) -> None:
    idp = mocked(lambda _: httpx.Response(504, json={"statusCode": 504}))
    call = idp.get("auth0|abc") if method == "GET" else idp.create(new_user("ada@example.com"))
    with pytest.raises(ProviderUnavailable) as caught:
        await call
    assert isinstance(caught.value, OutcomeUnknown) == outcome_unknown
    await idp.aclose()


async def test_a_refused_connection_is_unavailable_even_for_a_create() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    idp = Auth0Provider(base_url=f"http://127.0.0.1:{port}", client_id="c", client_secret="s")
    with pytest.raises(ProviderUnavailable) as caught:
        await idp.create(new_user("ada@example.com"))
    assert not isinstance(caught.value, OutcomeUnknown)
    await idp.aclose()


async def test_an_email_taken_on_update_is_a_conflict(
    make_provider: Callable[..., Auth0Provider],
) -> None:
    idp = make_provider()
    await idp.create(new_user("ada@example.com"))
    grace = await idp.create(new_user("grace@example.com"))
    with pytest.raises(RemoteConflict):  # Auth0's PATCH answers 400 with a telling message
        await idp.update(grace.remote_id, email="ada@example.com")


# -- e-mail case and connections ---------------------------------------------------------------


async def test_lookup_is_exact_on_lower_case_and_ignores_other_connections(
    emulator: Emulator, make_provider: Callable[..., Auth0Provider]
) -> None:
    """The adapter asks with accord's normalized e-mail and keeps only exact matches on its own
    connection. Database users are stored lower-case whatever case they were created with, so
    they are found; a social user whose stored e-mail kept its case is not (accord does not
    manage it), nor is a user of another connection with the same e-mail."""
    idp = make_provider()
    db_user = emulator.tenant.seed_user("Ada@Example.COM")
    emulator.tenant.seed_user("ada@example.com", connection="google-oauth2")
    emulator.tenant.seed_user("Grace@Example.com", connection="google-oauth2")
    assert db_user["email"] == "ada@example.com"
    assert (await idp.find_by_email("ada@example.com")).remote_id == db_user["user_id"]
    assert await idp.find_by_email("grace@example.com") is None
    assert await idp.find_by_email("Grace@Example.com") is None  # on another connection


async def test_iter_users_polls_the_export_and_lists_only_its_connection(
    emulator: Emulator, make_provider: Callable[..., Auth0Provider]
) -> None:
    idp = make_provider(export_poll_seconds=0.001)
    created = await idp.create(new_user("ada@example.com"))
    emulator.tenant.seed_user("grace@example.com")
    emulator.tenant.seed_user("linus@example.com", connection="github")
    emulator.tenant.export_polls = 2  # the job reports "processing" twice first
    listed = {u.email: u async for u in idp.iter_users()}
    assert set(listed) == {"ada@example.com", "grace@example.com"}
    assert listed["ada@example.com"].accord_user_id == created.accord_user_id
    assert listed["grace@example.com"].accord_user_id is None  # not an id accord chose

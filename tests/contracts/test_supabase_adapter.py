"""SupabaseProvider beyond the shared contract: lookups, credentials, errors, paging cost."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from accord.adapters.idp.http import retry_after_seconds
from accord.adapters.idp.supabase import SupabaseProvider, like_literal
from accord.config import SupabaseSettings
from accord.domain.errors import (
    ConfigurationError,
    OutcomeUnknown,
    ProviderMisconfigured,
    ProviderUnavailable,
    RemoteConflict,
    RemoteRejected,
)
from accord.domain.ports import NewRemoteUser
from accord.emulators.faults import FaultConfig
from accord.emulators.supabase import (
    DEFAULT_ANON_KEY,
    DEFAULT_SERVICE_ROLE_KEY,
    create_app,
    sign_jwt,
)
from accord.testing.servers import serve_in_thread
from tests.patience import HANG, PATIENCE, Hurried

KEY = DEFAULT_SERVICE_ROLE_KEY


@dataclass
class Emulator:
    url: str
    app: Any
    requests: list[httpx.Request] = field(default_factory=list)
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def provider(self, key: str = KEY, transport: Hurried | None = None) -> SupabaseProvider:
        """A provider whose requests are recorded in ``self.requests``."""

        async def record(request: httpx.Request) -> None:
            self.requests.append(request)

        self.clients.append(
            httpx.AsyncClient(event_hooks={"request": [record]}, transport=transport)
        )
        return SupabaseProvider(self.url, key, timeout_seconds=PATIENCE, client=self.clients[-1])

    async def script(self, endpoint: str, fault: str) -> None:
        async with httpx.AsyncClient(base_url=self.url) as control:
            body = {"endpoint": endpoint, "fault": fault}
            (await control.post("/__faults/next", json=body)).raise_for_status()

    def seed(self, emails: list[str]) -> None:
        for email in emails:
            self.app.state.admin.store.add({"email": email})


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Any]]:
    app = create_app(faults=FaultConfig(hang_seconds=HANG))
    with serve_in_thread(app) as url:
        yield url, app


@pytest.fixture
async def emulator(server: tuple[str, Any]) -> AsyncIterator[Emulator]:
    url, app = server
    app.state.admin.store.users.clear()
    app.state.faults.scripted.clear()
    emulator = Emulator(url, app)
    yield emulator
    for client in emulator.clients:
        await client.aclose()


@pytest.fixture
def idp(emulator: Emulator) -> SupabaseProvider:
    return emulator.provider()


def new_user(email: str, password: str | None = "correct horse") -> NewRemoteUser:
    return NewRemoteUser(user_id=uuid.uuid4(), email=email, full_name="Ada", password=password)


def _lists(requests: list[httpx.Request]) -> int:
    return sum(r.method == "GET" and r.url.path == "/auth/v1/admin/users" for r in requests)


# -- exact lookup ------------------------------------------------------------------------------


def test_like_literal_escapes_the_wildcards() -> None:
    assert like_literal("a_b%c\\d@x.com") == "a\\_b\\%c\\\\d@x.com"


async def test_the_emulator_filters_like_gotrue(emulator: Emulator, idp: SupabaseProvider) -> None:
    # What the lookup relies on: email LIKE '%x%' unescaped, OR full_name ILIKE '%x%'.
    for email in ("axb@example.com", "a_b@example.com"):
        await idp.create(new_user(email))
    headers = {"apikey": KEY, "Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=emulator.url, headers=headers) as http:

        async def emails(text: str) -> list[str]:
            response = await http.get("/auth/v1/admin/users", params={"filter": text})
            return sorted(u["email"] for u in response.json()["users"])

        assert await emails("a_b") == ["a_b@example.com", "axb@example.com"]
        assert await emails("a\\_b") == ["a_b@example.com"]
        assert await emails("A_B@") == []  # e-mail: case-sensitive
        assert await emails("aDA") == ["a_b@example.com", "axb@example.com"]  # full name


async def test_underscore_is_not_a_wildcard(emulator: Emulator, idp: SupabaseProvider) -> None:
    await idp.create(new_user("axb@example.com"))
    assert await idp.find_by_email("a_b@example.com") is None
    created = await idp.create(new_user("a_b@example.com"))
    assert (await idp.find_by_email("a_b@example.com")).remote_id == created.remote_id


async def test_percent_matches_itself_and_costs_one_request(
    emulator: Emulator, idp: SupabaseProvider
) -> None:
    # Unescaped, "%@example.com" would match all 250 users: three pages of candidates.
    emulator.seed([f"user{i}@example.com" for i in range(250)])
    emulator.requests.clear()
    assert await idp.find_by_email("%@example.com") is None
    created = await idp.create(new_user("100%@example.com"))
    assert (await idp.find_by_email("100%@example.com")).remote_id == created.remote_id
    assert _lists(emulator.requests) == 2


async def test_substring_and_full_name_matches_are_not_the_user(
    emulator: Emulator, idp: SupabaseProvider
) -> None:
    await idp.create(new_user("mary.ada@example.com"))
    other = NewRemoteUser(uuid.uuid4(), "other@example.com", full_name="ada@example.com")
    await idp.create(other)
    assert await idp.find_by_email("ada@example.com") is None


async def test_lookup_matches_gotrue_lower_casing(idp: SupabaseProvider) -> None:
    created = await idp.create(new_user("Grace@Example.com"))
    assert created.email == "grace@example.com"
    assert (await idp.find_by_email("GRACE@example.com")).remote_id == created.remote_id


async def test_many_candidates_are_paged_not_truncated(
    emulator: Emulator, idp: SupabaseProvider
) -> None:
    # 150 users whose e-mail contains the query: the exact one is on the second page.
    emulator.seed([f"x{i}.ada@example.com" for i in range(150)])
    created = await idp.create(new_user("ada@example.com"))
    emulator.requests.clear()
    assert (await idp.find_by_email("ada@example.com")).remote_id == created.remote_id
    assert _lists(emulator.requests) == 2


# -- ids, conflicts, rejections ----------------------------------------------------------------


async def test_remote_id_is_the_accord_user_id(idp: SupabaseProvider) -> None:
    user = new_user("ada@example.com")
    created = await idp.create(user)
    assert created.remote_id == created.accord_user_id == str(user.user_id)
    assert (await idp.get(str(user.user_id))).full_name == "Ada"


async def test_duplicate_id_with_another_email_is_outcome_unknown(idp: SupabaseProvider) -> None:
    # GoTrue answers a users_pkey violation with a bare 500; the engine resolves it with get(id).
    user = new_user("ada@example.com")
    await idp.create(user)
    with pytest.raises(OutcomeUnknown):
        await idp.create(NewRemoteUser(user.user_id, "bob@example.com", "Bob"))
    assert (await idp.get(str(user.user_id))).email == "ada@example.com"


async def test_update_to_a_taken_email_is_a_conflict(idp: SupabaseProvider) -> None:
    await idp.create(new_user("ada@example.com"))
    bob = await idp.create(new_user("bob@example.com"))
    with pytest.raises(RemoteConflict):
        await idp.update(bob.remote_id, email="ada@example.com")


async def test_server_side_weak_password_is_rejected(
    emulator: Emulator, idp: SupabaseProvider
) -> None:
    created = await idp.create(new_user("ada@example.com"))
    emulator.app.state.admin.password_min_length = 12
    try:
        with pytest.raises(RemoteRejected, match="weak_password"):
            await idp.update(created.remote_id, password="ninechars")
    finally:
        emulator.app.state.admin.password_min_length = 6


async def test_passwords_over_bcrypts_limit_are_rejected_without_a_request(
    emulator: Emulator, idp: SupabaseProvider
) -> None:
    with pytest.raises(RemoteRejected):
        await idp.create(new_user("ada@example.com", password="é" * 40))  # 80 bytes
    assert emulator.requests == []


async def test_initial_api_error_shape_is_understood() -> None:
    body = {"code": 422, "error_code": "email_exists", "msg": "already registered"}
    transport = httpx.MockTransport(lambda _: httpx.Response(422, json=body))
    provider = SupabaseProvider("http://gotrue.test", KEY, transport=transport)
    with pytest.raises(RemoteConflict, match="email_exists"):
        await provider.create(new_user("ada@example.com"))
    await provider.aclose()


# -- credentials -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        (sign_jwt({"role": "service_role"}, "another project's secret, 32+ chars"), "apikey"),
        (DEFAULT_ANON_KEY, "anon key"),
    ],
    ids=["foreign-key", "anon-key"],
)
async def test_bad_key_is_misconfigured_and_the_message_hides_it(
    emulator: Emulator, key: str, hint: str
) -> None:
    provider = emulator.provider(key=key)
    for call in (provider.check(), provider.create(new_user("ada@example.com"))):
        with pytest.raises(ProviderMisconfigured) as caught:
            await call
        message = str(caught.value)
        assert hint in message and "ACCORD_SUPABASE__SERVICE_ROLE_KEY" in message
        assert key not in message and key not in repr(caught.value.as_dict())


async def test_check_passes_with_the_service_role_key(idp: SupabaseProvider) -> None:
    await idp.check()


async def test_check_on_a_url_without_gotrue_is_misconfigured(emulator: Emulator) -> None:
    provider = SupabaseProvider(f"{emulator.url}/not-supabase", KEY)
    with pytest.raises(ProviderMisconfigured, match="ACCORD_SUPABASE__URL"):
        await provider.check()
    await provider.aclose()


def test_missing_settings_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ACCORD_SUPABASE__SERVICE_ROLE_KEY"):
        SupabaseProvider.from_settings(SupabaseSettings(url="https://x.supabase.co"))
    settings = SupabaseSettings(url="https://x.supabase.co/", service_role_key=SecretStr(KEY))
    assert SupabaseProvider.from_settings(settings)._base == "https://x.supabase.co/auth/v1"


# -- transient failures ------------------------------------------------------------------------


async def test_429_carries_retry_after(emulator: Emulator, idp: SupabaseProvider) -> None:
    await emulator.script("create_user", "rate_limited")
    with pytest.raises(ProviderUnavailable) as caught:
        await idp.create(new_user("ada@example.com"))
    assert not isinstance(caught.value, OutcomeUnknown)
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 2


def test_retry_after_accepts_seconds_and_dates() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < retry_after_seconds(later) <= 30


async def test_timeout_on_create_is_outcome_unknown(emulator: Emulator) -> None:
    hurried = Hurried()
    provider = emulator.provider(transport=hurried)
    await emulator.script("create_user", "timeout")
    hurried.hurry("POST", ".*/admin/users")
    with pytest.raises(OutcomeUnknown):
        await provider.create(new_user("ada@example.com"))


async def test_timeout_on_a_read_is_only_unavailable(emulator: Emulator) -> None:
    hurried = Hurried()
    provider = emulator.provider(transport=hurried)
    await emulator.script("get_user", "timeout")
    hurried.hurry("GET", ".*/admin/users/.+")
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.get(str(uuid.uuid4()))
    assert not isinstance(caught.value, OutcomeUnknown)


@pytest.mark.parametrize(
    ("fault", "unknown"), [("server_error", True), ("unavailable", False)], ids=["500", "503"]
)
async def test_5xx_on_create(
    emulator: Emulator, idp: SupabaseProvider, fault: str, unknown: bool
) -> None:
    await emulator.script("create_user", fault)
    with pytest.raises(ProviderUnavailable) as caught:
        await idp.create(new_user("ada@example.com"))
    assert isinstance(caught.value, OutcomeUnknown) is unknown


async def test_refused_connection_is_unavailable_not_unknown() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    provider = SupabaseProvider(url, KEY, timeout_seconds=PATIENCE)
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.create(new_user("ada@example.com"))
    assert not isinstance(caught.value, OutcomeUnknown)
    await provider.aclose()


# -- listing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "requests"), [(250, 3), (200, 2), (0, 1)])
async def test_listing_stops_at_the_last_page(
    emulator: Emulator, idp: SupabaseProvider, count: int, requests: int
) -> None:
    emulator.seed([f"user{i}@example.com" for i in range(count)])
    seen = [u.email async for u in idp.iter_users(page_size=100)]
    assert seen == [f"user{i}@example.com" for i in range(count)]  # oldest first
    assert _lists(emulator.requests) == requests

"""The official supabase_auth SDK, as a client of the GoTrue emulator over loopback HTTP.

If the SDK gets what it expects from the emulator, the emulator speaks GoTrue's dialect, and the
adapter's tests against the emulator mean something (docs/idp/supabase.md#emulator-fidelity).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from supabase_auth import AsyncGoTrueClient
from supabase_auth.errors import AuthApiError, AuthRetryableError, AuthWeakPasswordError

from accord.emulators.supabase import DEFAULT_ANON_KEY, DEFAULT_SERVICE_ROLE_KEY, create_app
from accord.testing.servers import serve_in_thread

KEY = DEFAULT_SERVICE_ROLE_KEY


@pytest.fixture(scope="module")
def emulator() -> Iterator[tuple[str, object]]:
    app = create_app()
    with serve_in_thread(app) as base_url:
        yield base_url, app


def _client(base_url: str, **headers: str) -> AsyncGoTrueClient:
    headers = {"apikey": KEY, "Authorization": f"Bearer {KEY}", **headers}
    return AsyncGoTrueClient(url=f"{base_url}/auth/v1", headers=headers, auto_refresh_token=False)


@pytest.fixture
async def gotrue(emulator: tuple[str, object]) -> AsyncIterator[AsyncGoTrueClient]:
    client = _client(emulator[0])
    try:
        yield client
    finally:
        await client.close()


def _email(name: str = "ada") -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}@example.com"


async def test_create_returns_the_full_user(gotrue: AsyncGoTrueClient) -> None:
    email = _email()
    created = await gotrue.admin.create_user(
        {
            "email": email.upper(),
            "password": "Passw0rd!x",
            "email_confirm": True,
            "user_metadata": {"name": "Ada"},
            "app_metadata": {"org_id": "org_1"},
        }
    )
    user = created.user
    assert user.email == email  # lower-cased by GoTrue
    assert user.aud == "authenticated" and user.role == "authenticated"
    assert user.app_metadata == {"provider": "email", "providers": ["email"], "org_id": "org_1"}
    assert user.user_metadata == {"name": "Ada", "email_verified": True}
    assert user.email_confirmed_at is not None and user.created_at is not None
    [identity] = user.identities or []
    assert identity.provider == "email" and identity.user_id == user.id
    assert identity.identity_data["email"] == email


async def test_create_with_a_chosen_id_and_get_it_back(gotrue: AsyncGoTrueClient) -> None:
    chosen = str(uuid.uuid4())
    await gotrue.admin.create_user({"id": chosen, "email": _email()})  # type: ignore[typeddict-unknown-key]
    assert (await gotrue.admin.get_user_by_id(chosen)).user.id == chosen


async def test_duplicate_email_is_email_exists(gotrue: AsyncGoTrueClient) -> None:
    email = _email()
    await gotrue.admin.create_user({"email": email})
    with pytest.raises(AuthApiError) as caught:
        await gotrue.admin.create_user({"email": email})
    assert (caught.value.status, caught.value.code) == (422, "email_exists")
    assert caught.value.message == "A user with this email address has already been registered"


async def test_initial_api_errors_still_carry_the_code(emulator: tuple[str, object]) -> None:
    # An older version header gets the initial shape {code:int, error_code, msg}
    # (docs/idp/supabase.md#error-bodies).
    client = _client(emulator[0], **{"X-Supabase-Api-Version": "2023-06-01"})
    try:
        email = _email()
        await client.admin.create_user({"email": email})
        with pytest.raises(AuthApiError) as caught:
            await client.admin.create_user({"email": email})
        assert (caught.value.status, caught.value.code) == (422, "email_exists")
    finally:
        await client.close()


async def test_update_merges_metadata_and_checks_the_password(gotrue: AsyncGoTrueClient) -> None:
    user = (await gotrue.admin.create_user({"email": _email(), "user_metadata": {"a": 1}})).user
    updated = await gotrue.admin.update_user_by_id(
        user.id, {"password": "N3w!pass", "user_metadata": {"b": 2}}
    )
    assert updated.user.user_metadata == {"a": 1, "b": 2}
    with pytest.raises(AuthWeakPasswordError) as caught:
        await gotrue.admin.update_user_by_id(user.id, {"password": "abc"})
    assert caught.value.status == 422 and caught.value.reasons == ["length"]


async def test_delete_then_get_is_user_not_found(gotrue: AsyncGoTrueClient) -> None:
    user = (await gotrue.admin.create_user({"email": _email()})).user
    await gotrue.admin.delete_user(user.id)  # sends {"should_soft_delete": false}
    with pytest.raises(AuthApiError) as caught:
        await gotrue.admin.get_user_by_id(user.id)
    assert (caught.value.status, caught.value.code) == (404, "user_not_found")


async def test_list_users_pages(gotrue: AsyncGoTrueClient) -> None:
    for _ in range(4):
        await gotrue.admin.create_user({"email": _email("pager")})
    assert 4 <= len(await gotrue.admin.list_users()) <= 50  # sends ?page=&per_page=
    first, second = [await gotrue.admin.list_users(page=p, per_page=2) for p in (1, 2)]
    assert len(first) == len(second) == 2
    assert not {u.id for u in first} & {u.id for u in second}


async def test_raw_wire_headers_and_error_shapes(emulator: tuple[str, object]) -> None:
    # What the SDK hides: pagination headers (docs/idp/supabase.md#listing-and-pagination) and the
    # versioned error shape (docs/idp/supabase.md#error-bodies).
    headers = {"apikey": KEY, "Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=emulator[0], headers=headers) as http:
        for _ in range(2):
            await http.post("/auth/v1/admin/users", json={"email": _email("raw")})
        listed = await http.get("/auth/v1/admin/users", params={"page": "1", "per_page": "1"})
        missing = f"/auth/v1/admin/users/{uuid.uuid4()}"
        legacy = await http.get(missing)
        current = await http.get(missing, headers={"X-Supabase-Api-Version": "2024-01-01"})
    total = int(listed.headers["x-total-count"])
    assert total >= 2 and listed.json()["aud"] == "authenticated"
    assert listed.headers["link"] == (
        '</admin/users?page=2&per_page=1>; rel="next", '
        f'</admin/users?page={total}&per_page=1>; rel="last"'
    )
    assert legacy.json() == {"code": 404, "error_code": "user_not_found", "msg": "User not found"}
    assert "x-supabase-api-version" not in legacy.headers
    assert current.json() == {"code": "user_not_found", "message": "User not found"}
    assert current.headers["x-supabase-api-version"] == "2024-01-01"
    assert legacy.headers["x-sb-error-code"] == current.headers["x-sb-error-code"]


async def test_the_key_header_name_is_case_insensitive(emulator: tuple[str, object]) -> None:
    # supabase.create_client spells it "apiKey" (docs/idp/supabase.md#admin-credentials).
    client = AsyncGoTrueClient(
        url=f"{emulator[0]}/auth/v1", headers={"apiKey": KEY, "Authorization": f"Bearer {KEY}"}
    )
    try:
        assert isinstance(await client.admin.list_users(page=1, per_page=1), list)
    finally:
        await client.close()


async def test_the_anon_key_is_not_admin(emulator: tuple[str, object]) -> None:
    anon = DEFAULT_ANON_KEY
    client = AsyncGoTrueClient(
        url=f"{emulator[0]}/auth/v1", headers={"apikey": anon, "Authorization": f"Bearer {anon}"}
    )
    try:
        with pytest.raises(AuthApiError) as caught:
            await client.admin.list_users()
        assert (caught.value.status, caught.value.code) == (403, "not_admin")
    finally:
        await client.close()


async def test_gateway_errors_are_retryable_for_the_sdk(
    emulator: tuple[str, object], gotrue: AsyncGoTrueClient
) -> None:
    emulator[1].state.faults.script("create_user", "unavailable")  # type: ignore[attr-defined]
    with pytest.raises(AuthRetryableError):
        await gotrue.admin.create_user({"email": _email()})


async def test_a_ban_sets_banned_until_and_none_lifts_it(gotrue: AsyncGoTrueClient) -> None:
    # What SupabaseProvider.set_enabled sends (docs/idp/supabase.md#banning-users).
    user = (await gotrue.admin.create_user({"email": _email("ban")})).user
    assert user.banned_until is None
    banned = (await gotrue.admin.update_user_by_id(user.id, {"ban_duration": "876000h"})).user
    assert banned.banned_until is not None and int(str(banned.banned_until)[:4]) >= 2100
    read = (await gotrue.admin.get_user_by_id(user.id)).user
    assert read.banned_until == banned.banned_until
    lifted = (await gotrue.admin.update_user_by_id(user.id, {"ban_duration": "none"})).user
    assert lifted.banned_until is None
    with pytest.raises(AuthApiError) as caught:
        await gotrue.admin.update_user_by_id(user.id, {"ban_duration": "forever"})
    assert (caught.value.status, caught.value.code) == (400, "validation_failed")

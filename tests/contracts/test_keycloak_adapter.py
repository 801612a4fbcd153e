"""What the shared contract cannot see: Keycloak's attribute policy, tokens and error mapping."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from accord.adapters.idp.keycloak import KeycloakProvider
from accord.config import KeycloakSettings
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
from accord.emulators.keycloak import DEFAULT_CLIENT_ID, DEFAULT_REALM, create_app
from accord.testing.servers import serve_in_thread
from tests.contracts.harness_keycloak import provider_for, script_fault
from tests.patience import HANG, PATIENCE, Hurried


class Server:
    def __init__(self, app: Starlette, url: str) -> None:
        self.app, self.url, self.realm = app, url, app.state.keycloak


@pytest.fixture
def serve() -> Iterator[Any]:
    """serve(**create_app options) -> a running emulator; all stop after the test."""
    stack: list[Any] = []

    def start(**options: Any) -> Server:
        app = create_app(**options)
        cm = serve_in_thread(app)
        stack.append(cm)
        return Server(app, cm.__enter__())

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


@pytest.fixture
async def server(serve: Any) -> Server:
    return serve()


def new_user(email: str = "ada@example.com", password: str | None = None) -> NewRemoteUser:
    return NewRemoteUser(uuid.uuid4(), email, "Ada Lovelace", password=password)


# -- the unmanaged-attribute policy ------------------------------------------------------------


async def test_a_realm_that_drops_the_attribute_is_explained_and_left_clean(serve: Any) -> None:
    emulator = serve(unmanaged_attributes=False)
    idp = provider_for(emulator.url)
    with pytest.raises(ProviderMisconfigured, match="unmanagedAttributePolicy") as caught:
        await idp.create(new_user())
    assert "accord_user_id" in caught.value.message
    assert emulator.realm.users == {}  # the user it could not label is deleted again
    with pytest.raises(ProviderMisconfigured, match="Unmanaged attributes"):
        await idp.check()
    await idp.aclose()


async def test_enabling_unmanaged_attributes_as_the_message_says_fixes_it(serve: Any) -> None:
    emulator = serve(unmanaged_attributes=False)
    idp = provider_for(emulator.url)
    profile = (await idp._request("GET", "/users/profile")).json()
    profile["unmanagedAttributePolicy"] = "ENABLED"
    await idp._request("PUT", "/users/profile", json=profile)
    await idp.check()
    user = new_user()
    await idp.create(user)
    assert (await idp.find_by_email(user.email)).accord_user_id == str(user.user_id)
    await idp.aclose()


async def test_a_declared_attribute_is_kept_with_the_policy_off(serve: Any) -> None:
    emulator = serve(unmanaged_attributes=False)
    emulator.realm.declared = [{"name": "accord_user_id"}]
    idp = provider_for(emulator.url)
    await idp.check()
    user = new_user()
    await idp.create(user)
    assert (await idp.get((await idp.find_by_email(user.email)).remote_id)).accord_user_id
    await idp.aclose()


# -- tokens and credentials --------------------------------------------------------------------


async def test_the_token_is_cached_and_refreshed_before_it_expires(server: Server) -> None:
    now = [1000.0]
    idp = provider_for(server.url, clock=lambda: now[0])
    await idp.check()
    await idp.find_by_email("ada@example.com")
    assert server.realm.tokens_issued == 1
    now[0] += 0.95 * server.realm.token_lifespan  # past 90 % of expires_in
    await idp.find_by_email("ada@example.com")
    assert server.realm.tokens_issued == 2
    await idp.aclose()


async def test_a_revoked_token_is_replaced_once_transparently(server: Server) -> None:
    idp = provider_for(server.url)
    await idp.check()
    server.realm.revoke_tokens()
    created = await idp.create(new_user())  # 401, fresh token, the same POST once more
    assert server.realm.tokens_issued == 2
    assert list(server.realm.users) == [created.remote_id]
    await idp.aclose()


@pytest.mark.parametrize(
    ("client_id", "secret", "error"),
    [
        (DEFAULT_CLIENT_ID, "wrong-secret-value", "unauthorized_client"),
        ("nobody", "wrong-secret-value", "invalid_client"),
    ],
)
async def test_bad_client_credentials_are_misconfiguration(
    server: Server, client_id: str, secret: str, error: str
) -> None:
    idp = KeycloakProvider(server.url, DEFAULT_REALM, client_id, secret, timeout_seconds=PATIENCE)
    with pytest.raises(ProviderMisconfigured) as caught:
        await idp.check()
    message = caught.value.message
    assert error in message and "ACCORD_KEYCLOAK__CLIENT_SECRET" in message
    assert client_id in message and secret not in message and secret not in repr(idp.__dict__)
    await idp.aclose()


async def test_an_unknown_realm_is_misconfiguration(server: Server) -> None:
    idp = KeycloakProvider(server.url, "nope", DEFAULT_CLIENT_ID, "x", timeout_seconds=PATIENCE)
    with pytest.raises(ProviderMisconfigured, match="no realm 'nope'"):
        await idp.check()
    await idp.aclose()


async def test_a_service_account_without_manage_users_is_told_so(serve: Any) -> None:
    emulator = serve(roles=frozenset({"view-users"}))
    idp = provider_for(emulator.url)
    await idp.check()  # reads are allowed
    with pytest.raises(ProviderMisconfigured, match="manage-users"):
        await idp.create(new_user())
    await idp.aclose()


def test_missing_settings_are_named() -> None:
    with pytest.raises(ConfigurationError, match="ACCORD_KEYCLOAK__CLIENT_SECRET"):
        KeycloakProvider.from_settings(KeycloakSettings(server_url="http://x", realm="r"))


# -- transient failures ------------------------------------------------------------------------


async def test_429_carries_retry_after(server: Server) -> None:
    idp = provider_for(server.url)
    await script_fault(server.url, "search_users", "rate_limited")
    with pytest.raises(ProviderUnavailable) as caught:
        await idp.find_by_email("ada@example.com")
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1
    assert not isinstance(caught.value, OutcomeUnknown)
    await idp.aclose()


@pytest.mark.parametrize(("fault", "unknown"), [("server_error", True), ("unavailable", False)])
async def test_5xx_on_create_is_unknown_except_503(server: Server, fault: str, unknown: bool):
    idp = provider_for(server.url)
    await script_fault(server.url, "create_user", fault)
    with pytest.raises(ProviderUnavailable) as caught:
        await idp.create(new_user())
    assert isinstance(caught.value, OutcomeUnknown) is unknown
    await idp.aclose()


async def test_5xx_on_a_read_is_unavailable(server: Server) -> None:
    idp = provider_for(server.url)
    await script_fault(server.url, "get_user", "server_error")
    with pytest.raises(ProviderUnavailable) as caught:
        await idp.get(str(uuid.uuid4()))
    assert not isinstance(caught.value, OutcomeUnknown)
    await idp.aclose()


async def test_a_timed_out_create_is_outcome_unknown_and_the_lookup_finds_the_ghost(
    serve: Any,
) -> None:
    emulator = serve(faults=FaultConfig(ghost_hang=True, hang_seconds=HANG))
    hurried = Hurried()
    idp = provider_for(emulator.url, transport=hurried)
    await idp.check()
    await script_fault(emulator.url, "create_user", "ghost")
    hurried.hurry("POST", "/admin/realms/[^/]+/users")
    user = new_user()
    with pytest.raises(OutcomeUnknown):
        await idp.create(user)
    found = await idp.find_by_email(user.email)
    assert found is not None and found.accord_user_id == str(user.user_id)
    with pytest.raises(RemoteConflict):  # a blind retry would fail: adopt instead
        await idp.create(user)
    await idp.aclose()


async def test_a_refused_connection_is_unavailable_even_for_a_create() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    idp = provider_for("http://kc.invalid", transport=httpx.MockTransport(refuse))
    with pytest.raises(ProviderUnavailable) as caught:
        await idp.create(new_user())
    assert not isinstance(caught.value, OutcomeUnknown)
    await idp.aclose()


# -- users -------------------------------------------------------------------------------------


async def test_a_refused_password_leaves_no_user_and_says_why(server: Server) -> None:
    idp = provider_for(server.url)
    with pytest.raises(RemoteRejected, match="minimum length 8"):
        await idp.create(new_user(password="short"))
    assert server.realm.users == {}
    await idp.aclose()


async def test_update_keeps_what_it_does_not_change(server: Server) -> None:
    # PUT replaces the whole user: the adapter must send back attributes it does not own.
    idp = provider_for(server.url)
    user = new_user(password="long enough pass")
    created = await idp.create(user)
    server.realm.users[created.remote_id]["attributes"]["department"] = ["R&D"]
    updated = await idp.update(created.remote_id, email="ADA.L@example.com", full_name="Ada L.")
    stored = server.realm.users[created.remote_id]
    assert stored["attributes"] == {"accord_user_id": [str(user.user_id)], "department": ["R&D"]}
    assert (stored["username"], stored["email"]) == ("ada.l@example.com", "ada.l@example.com")
    assert (stored["firstName"], stored["lastName"], stored["enabled"]) == ("Ada", "L.", True)
    assert updated.accord_user_id == str(user.user_id) and updated.full_name == "Ada L."
    await idp.aclose()


async def test_find_by_email_ignores_substring_matches(server: Server) -> None:
    idp = provider_for(server.url)
    server.realm.create({"username": "a@x.com2", "email": "a@x.com2"})
    assert await idp.find_by_email("a@x.com") is None
    await idp.aclose()

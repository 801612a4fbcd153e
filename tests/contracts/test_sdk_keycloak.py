"""The official python-keycloak SDK against the Keycloak emulator: proof that the emulator speaks
Keycloak's dialect (docs/idp/keycloak.md#the-python-keycloak-sdk), over real loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from keycloak import KeycloakAdmin, KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakGetError, KeycloakPostError, KeycloakPutError
from starlette.applications import Starlette

from accord.emulators.keycloak import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REALM,
    create_app,
)
from accord.testing.servers import serve_in_thread
from tests.patience import PATIENCE

ALICE = {
    "username": "Alice@Example.com",
    "email": "Alice@Example.com",
    "enabled": True,
    "emailVerified": True,
    "firstName": "Alice",
    "lastName": "A",
    "attributes": {"org_id": ["org_1"]},
    "credentials": [{"type": "password", "value": "Passw0rd!x", "temporary": False}],
}


@pytest.fixture
def app() -> Starlette:
    return create_app()


def connect(url: str) -> KeycloakOpenIDConnection:
    """The SDK's client-credentials connection, as a service account would use it."""
    return KeycloakOpenIDConnection(
        server_url=url,
        realm_name=DEFAULT_REALM,
        client_id=DEFAULT_CLIENT_ID,
        client_secret_key=DEFAULT_CLIENT_SECRET,
        timeout=PATIENCE,
    )


async def disconnect(connection: KeycloakOpenIDConnection) -> None:
    """Close the SDK's sockets (admin and token connections, sync and async)."""
    for manager in (connection, connection.keycloak_openid.connection):
        manager._s.close()
        await manager.aclose()


@pytest.fixture
async def admin(app: Starlette) -> AsyncIterator[KeycloakAdmin]:
    with serve_in_thread(app) as url:
        connection = connect(url)
        yield KeycloakAdmin(connection=connection)
        await disconnect(connection)


def test_create_find_update_password_delete(admin: KeycloakAdmin, app: Starlette) -> None:
    user_id = admin.create_user(ALICE)  # the id comes from Location
    assert admin.get_user_id("alice@example.com") == user_id
    found = admin.get_users({"email": "ALICE@example.com", "exact": True})
    assert [u["id"] for u in found] == [user_id]
    user = admin.get_user(user_id)
    assert (user["username"], user["email"]) == ("alice@example.com", "alice@example.com")
    assert user["attributes"] == {"org_id": ["org_1"]}

    # PUT is a full replace: send the whole representation back with the change.
    admin.update_user(user_id, {**user, "firstName": "Alicia"})
    assert admin.get_user(user_id)["firstName"] == "Alicia"
    admin.set_user_password(user_id, "N3w!password", temporary=False)
    assert app.state.keycloak.password_digests[user_id]

    admin.delete_user(user_id)
    with pytest.raises(KeycloakGetError) as caught:
        admin.get_user(user_id)
    assert caught.value.response_code == 404
    assert b'"error":"User not found"' in caught.value.response_body


def test_a_partial_put_clears_the_fields_it_leaves_out(admin: KeycloakAdmin) -> None:
    user_id = admin.create_user(ALICE)
    admin.update_user(user_id, {"firstName": "A", "attributes": {"org_id": ["o1"]}})
    user = admin.get_user(user_id)
    assert "email" not in user and "lastName" not in user and user["firstName"] == "A"


def test_email_search_is_a_substring_unless_exact(admin: KeycloakAdmin) -> None:
    admin.create_user({"username": "a", "email": "a@x.com"})
    admin.create_user({"username": "b", "email": "a@x.com2"})
    assert len(admin.get_users({"email": "a@x.com"})) == 2
    assert [u["username"] for u in admin.get_users({"email": "a@x.com", "exact": True})] == ["a"]
    assert admin.get_users({"email": "nobody@x.com", "exact": True}) == []


def test_listing_pages_through_everyone_and_count_agrees(admin: KeycloakAdmin) -> None:
    for i in range(230):
        admin.create_user({"username": f"user{i:03d}", "email": f"user{i:03d}@example.com"})
    everyone = admin.get_users()  # pages 100 at a time via first/max
    assert len(everyone) == 230 == admin.users_count()
    assert [u["username"] for u in admin.get_users({"first": 100, "max": 2})] == [
        "user100",
        "user101",
    ]
    assert admin.users_count({"search": "user02*"}) == 10


def test_a_duplicate_email_is_409_and_exist_ok_only_checks_the_username(
    admin: KeycloakAdmin,
) -> None:
    first = admin.create_user(ALICE)
    with pytest.raises(KeycloakPostError) as caught:
        admin.create_user({**ALICE, "username": "someone-else"})
    assert caught.value.response_code == 409
    assert caught.value.response_body == b'{"errorMessage":"User exists with same email"}'
    # exist_ok looks the username up, never the e-mail
    # (docs/idp/keycloak.md#the-python-keycloak-sdk).
    assert admin.create_user(ALICE, exist_ok=True) == first
    with pytest.raises(KeycloakPostError) as caught:
        admin.create_user({**ALICE, "username": "someone-else"}, exist_ok=True)
    assert caught.value.response_code == 409


def test_password_policy_errors_have_keycloaks_shapes(admin: KeycloakAdmin) -> None:
    with pytest.raises(KeycloakPostError) as caught:
        admin.create_user({**ALICE, "credentials": [{"type": "password", "value": "abc"}]})
    assert caught.value.response_body == b'{"errorMessage":"Password policy not met"}'
    user_id = admin.create_user({"username": "bob", "email": "bob@example.com"})
    with pytest.raises(KeycloakPutError) as caught:
        admin.set_user_password(user_id, "abc", temporary=False)
    assert caught.value.response_code == 400
    assert b"invalidPasswordMinLengthMessage" in caught.value.response_body


def test_unmanaged_attributes_are_dropped_when_the_realm_says_so(
    admin: KeycloakAdmin, app: Starlette
) -> None:
    app.state.keycloak.unmanaged_policy = None  # Keycloak 24+'s default
    user_id = admin.create_user(ALICE)
    assert "attributes" not in admin.get_user(user_id)
    assert (
        "unmanagedAttributePolicy"
        not in admin.connection.raw_get(f"admin/realms/{DEFAULT_REALM}/users/profile").json()
    )


async def test_the_async_api_speaks_the_same_dialect(admin: KeycloakAdmin) -> None:
    user_id = await admin.a_create_user(ALICE)
    found = await admin.a_get_users({"email": "alice@example.com", "exact": True})
    assert [u["id"] for u in found] == [user_id]
    assert await admin.a_users_count() == 1
    await admin.a_delete_user(user_id)
    assert await admin.a_users_count() == 0


def test_a_disabled_user_reads_back_disabled_and_can_be_enabled(admin: KeycloakAdmin) -> None:
    # What KeycloakProvider.set_enabled sends: the whole representation, ``enabled`` changed
    # (docs/idp/keycloak.md#disabling-users).
    user_id = admin.create_user(ALICE)
    user = admin.get_user(user_id)
    assert user["enabled"] is True
    admin.update_user(user_id, {**user, "enabled": False})
    disabled = admin.get_user(user_id)
    assert disabled["enabled"] is False
    assert disabled["attributes"] == user["attributes"]  # the rest came back whole
    assert [u["id"] for u in admin.get_users({"enabled": False})] == [user_id]
    admin.update_user(user_id, {**disabled, "enabled": True})
    assert admin.get_user(user_id)["enabled"] is True

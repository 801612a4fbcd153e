"""The Keycloak adapter against the Keycloak emulator, over real loopback HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx

from accord.adapters.idp.keycloak import ACCORD_ATTRIBUTE, KeycloakProvider
from accord.emulators.faults import FaultConfig
from accord.emulators.keycloak import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REALM,
    create_app,
)
from accord.testing.servers import serve_in_thread
from tests.patience import HANG, PATIENCE, Hurried

if TYPE_CHECKING:
    from tests.contracts.conftest import Context, Harness


# The emulator endpoint behind each port method (the create is the one the suite faults).
ENDPOINTS = {
    "create": "create_user",
    "get": "get_user",
    "find_by_email": "search_users",
    "update": "update_user",
    "delete": "delete_user",
    "set_enabled": "update_user",  # a PATCH (Auth0) or PUT (Keycloak, Supabase) of the user
    "iter_users": "list_users",
    "check": "count_users",
    "set_password": "reset_password",  # the second step of a create with a password
}
# The requests a hang holds: (HTTP method, path) of each method the suite makes hang.
ROUTES = {
    "create": ("POST", "/admin/realms/[^/]+/users"),
    "get": ("GET", "/admin/realms/[^/]+/users/[^/]+"),
}


def provider_for(base_url: str, **options: Any) -> KeycloakProvider:
    """A KeycloakProvider for an emulator at ``base_url`` with the default realm and client."""
    options.setdefault("timeout_seconds", PATIENCE)
    return KeycloakProvider(
        base_url, DEFAULT_REALM, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, **options
    )


async def script_fault(base_url: str, endpoint: str, fault: str, count: int = 1) -> None:
    """Make the emulator's next ``count`` requests of ``endpoint`` fail with ``fault``."""
    async with httpx.AsyncClient(base_url=base_url) as control:
        body = {"endpoint": endpoint, "fault": fault, "count": count}
        (await control.post("/__faults/next", json=body)).raise_for_status()


@asynccontextmanager
async def harness(ctx: Context) -> AsyncIterator[Harness]:
    from tests.contracts.conftest import Harness  # the conftest imports this module

    app = create_app(faults=FaultConfig(hang_seconds=HANG))
    realm = app.state.keycloak
    hurried = Hurried()

    async def inject(fault: str, method: str) -> None:
        await script_fault(url, ENDPOINTS[method], fault)
        if fault == "timeout":
            hurried.hurry(*ROUTES[method])

    async def seed_users(emails: list[str]) -> None:
        # Straight into the emulator's store: the suite lists them through the adapter.
        for email in emails:
            attributes = {ACCORD_ATTRIBUTE: [str(uuid.uuid4())]}
            realm.create({"username": email, "email": email, "attributes": attributes})

    with serve_in_thread(app) as url:
        provider = provider_for(url, transport=hurried)
        h = Harness(provider, inject=inject)
        h.seed_users = seed_users  # type: ignore[attr-defined]
        h.realm = realm  # type: ignore[attr-defined]  # the emulator's state, for assertions
        try:
            yield h
        finally:
            await provider.aclose()

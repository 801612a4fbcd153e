"""The contract suite against SupabaseProvider talking to the GoTrue emulator over loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from accord.adapters.idp.supabase import SupabaseProvider
from accord.emulators.faults import FaultConfig
from accord.emulators.supabase import DEFAULT_SERVICE_ROLE_KEY, create_app
from accord.testing.servers import serve_in_thread
from tests.contracts.conftest import Context, Harness
from tests.patience import HANG, PATIENCE, Hurried

# The port's methods → the emulator endpoint whose next request the fault hits.
ENDPOINTS = {
    "create": "create_user",
    "get": "get_user",
    "update": "update_user",
    "delete": "delete_user",
    "set_enabled": "update_user",  # a PATCH (Auth0) or PUT (Keycloak, Supabase) of the user
    "find_by_email": "list_users",
    "iter_users": "list_users",
    "check": "get_user",
}
# The requests a hang holds: (HTTP method, path) of each method the suite makes hang.
ROUTES = {"create": ("POST", ".*/admin/users"), "get": ("GET", ".*/admin/users/[^/]+")}


@asynccontextmanager
async def harness(ctx: Context) -> AsyncIterator[Harness]:
    app = create_app(faults=FaultConfig(hang_seconds=HANG))
    with serve_in_thread(app) as base_url:
        hurried = Hurried()
        provider = SupabaseProvider(
            base_url, DEFAULT_SERVICE_ROLE_KEY, timeout_seconds=PATIENCE, transport=hurried
        )
        async with httpx.AsyncClient(base_url=base_url) as control:

            async def inject(fault: str, method: str) -> None:
                body = {"endpoint": ENDPOINTS[method], "fault": fault, "count": 1}
                (await control.post("/__faults/next", json=body)).raise_for_status()
                if fault == "timeout":
                    hurried.hurry(*ROUTES[method])

            async def seed_users(emails: list[str]) -> None:
                # Bulk setup straight into the store (the test is about listing, not creating).
                for email in emails:
                    app.state.admin.store.add({"email": email, "email_confirm": True})

            h = Harness(provider, inject=inject)
            h.seed_users = seed_users  # type: ignore[attr-defined]  # read by _create_many
            try:
                yield h
            finally:
                await provider.aclose()

"""The contract suite's Auth0: ``Auth0Provider`` over real HTTP to the emulator on loopback.

Faults are scripted per endpoint (``POST /__faults/next``). Ghost creates and timeouts hang, and
that one request is hurried (tests/patience.py), so they surface as OutcomeUnknown, the way a
lost answer does, while every healthy call is patient. Search lags
for a minute: the provider must not depend on it (it looks up through users-by-email and lists
through an export job, both immediately consistent), so ``settle`` has nothing to wait for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from accord.adapters.idp.auth0 import Auth0Provider
from accord.emulators.auth0 import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, create_app
from accord.emulators.faults import FaultConfig
from accord.testing.servers import serve_in_thread
from tests.contracts.conftest import Context, Harness
from tests.patience import HANG, PATIENCE, Hurried

# The contract's method names → the emulator's endpoint names.
ENDPOINTS = {
    "find_by_email": "users_by_email",
    "get": "get_user",
    "create": "create_user",
    "update": "update_user",
    "delete": "delete_user",
    "set_enabled": "update_user",  # a PATCH (Auth0) or PUT (Keycloak, Supabase) of the user
    "iter_users": "export_users",
    "check": "users_by_email",
}
# The requests a hang holds: (HTTP method, path) of each method the suite makes hang.
ROUTES = {"create": ("POST", "/api/v2/users"), "get": ("GET", "/api/v2/users/.+")}
HANGS = {"timeout", "ghost"}  # with ghost_hang, a ghost create holds its answer too


@dataclass
class Auth0Harness(Harness):
    # The suite calls seed_users(emails) instead of thousands of creates when a harness has it.
    seed_users: Callable[[list[str]], Any] | None = None


def emulator_faults() -> FaultConfig:
    """Hangs outlast a hurried request; search never catches up in a test."""
    return FaultConfig(hang_seconds=HANG, ghost_hang=True, search_lag_ms=60_000)


@asynccontextmanager
async def harness(ctx: Context) -> AsyncIterator[Harness]:
    app = create_app(faults=emulator_faults())
    hurried = Hurried()
    with serve_in_thread(app) as base_url:
        provider = Auth0Provider(
            base_url=base_url,
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
            timeout=PATIENCE,
            transport=hurried,
        )
        async with httpx.AsyncClient(base_url=base_url) as control:

            async def inject(fault: str, method: str) -> None:
                body = {"endpoint": ENDPOINTS[method], "fault": fault, "count": 1}
                (await control.post("/__faults/next", json=body)).raise_for_status()
                if fault in HANGS:
                    hurried.hurry(*ROUTES[method])

            async def seed_users(emails: list[str]) -> None:
                for email in emails:  # the server thread is idle: no request is in flight
                    app.state.tenant.seed_user(email)

            try:
                yield Auth0Harness(provider, inject=inject, seed_users=seed_users)
            finally:
                await provider.aclose()

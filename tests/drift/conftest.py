"""Drift tests run against every identity provider: accord's database plus each IdP, with a way
to plant users in the IdP that accord never made (straight into the provider's store)."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import insert, text

from accord.adapters.db.tables import local_identities
from accord.bootstrap import Accord, build
from accord.config import Settings
from accord.domain.ports import RemoteUser
from accord.emulators import auth0 as auth0_emulator
from accord.emulators import keycloak as keycloak_emulator
from accord.emulators.faults import FaultConfig
from accord.testing import FakeIdentityProvider
from accord.testing.servers import serve_in_thread
from tests.contracts import harness_keycloak
from tests.patience import PATIENCE

IDPS = ("local", "fake", "auth0", "keycloak", "supabase")


@dataclass
class Planted:
    """accord on an IdP, and a way to plant a user in that IdP that accord did not create."""

    app: Accord
    _plant: Callable[[str], Any]

    async def plant_foreign(self, email: str) -> None:
        """Put ``email`` in the IdP as another system would: no accord stamp, no row."""
        planted = self._plant(email)
        if inspect.isawaitable(planted):
            await planted


@asynccontextmanager
async def _local(settings: Settings) -> AsyncIterator[Planted]:
    app = build(settings)

    async def plant(email: str) -> None:
        async with app.db.transaction() as conn:
            await conn.execute(insert(local_identities).values(id=str(uuid.uuid4()), email=email))

    try:
        yield Planted(app, plant)
    finally:
        await app.aclose()


@asynccontextmanager
async def _fake(settings: Settings) -> AsyncIterator[Planted]:
    fake = FakeIdentityProvider()

    def plant(email: str) -> None:
        remote_id = f"legacy|{uuid.uuid4().hex}"
        fake.users[remote_id] = RemoteUser(remote_id, email, "Legacy User", None)

    app = build(settings, idp=fake)
    try:
        yield Planted(app, plant)
    finally:
        await app.aclose()


@asynccontextmanager
async def _auth0(settings: Settings) -> AsyncIterator[Planted]:
    from accord.adapters.idp.auth0 import Auth0Provider

    emulator = auth0_emulator.create_app(faults=FaultConfig())
    with serve_in_thread(emulator) as url:
        provider = Auth0Provider(
            base_url=url,
            client_id=auth0_emulator.DEFAULT_CLIENT_ID,
            client_secret=auth0_emulator.DEFAULT_CLIENT_SECRET,
            timeout=PATIENCE,
            export_poll_seconds=0.05,
        )
        app = build(settings, idp=provider)
        try:  # a seeded id of 24 hex digits carries no accord stamp (ours have 32)
            yield Planted(app, lambda email: emulator.state.tenant.seed_user(email))
        finally:
            await app.aclose()


@asynccontextmanager
async def _keycloak(settings: Settings) -> AsyncIterator[Planted]:
    emulator = keycloak_emulator.create_app(faults=FaultConfig())
    realm = emulator.state.keycloak
    with serve_in_thread(emulator) as url:
        app = build(settings, idp=harness_keycloak.provider_for(url, timeout_seconds=PATIENCE))
        try:  # no accord_user_id attribute: a user some other system made
            yield Planted(app, lambda email: realm.create({"username": email, "email": email}))
        finally:
            await app.aclose()


@asynccontextmanager
async def _supabase(settings: Settings) -> AsyncIterator[Planted]:
    from accord.adapters.idp.supabase import SupabaseProvider
    from accord.emulators import supabase as supabase_emulator

    emulator = supabase_emulator.create_app(faults=FaultConfig())
    store = emulator.state.admin.store
    with serve_in_thread(emulator) as url:
        provider = SupabaseProvider(
            url, supabase_emulator.DEFAULT_SERVICE_ROLE_KEY, timeout_seconds=PATIENCE
        )
        app = build(settings, idp=provider)
        try:  # no accord_user_id in app_metadata: a user some other system made
            yield Planted(app, lambda email: store.add({"email": email, "email_confirm": True}))
        finally:
            await app.aclose()


OPENERS = {
    "local": _local,
    "fake": _fake,
    "auth0": _auth0,
    "keycloak": _keycloak,
    "supabase": _supabase,
}


@pytest.fixture(params=IDPS)
async def planted(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Planted]:
    """accord on this test's database, with each identity provider in turn."""
    async with OPENERS[request.param](settings) as instance:
        yield instance


@pytest.fixture
async def fake_app(settings: Settings) -> AsyncIterator[Planted]:
    async with _fake(settings) as instance:
        yield instance


async def sql(app: Accord, statement: str, **params: Any) -> Any:
    """Run one statement on accord's database; the first column of the first row, if any."""
    async with app.db.transaction() as conn:
        result = await conn.execute(text(statement), params)
        return result.scalar() if result.returns_rows else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Soak tests stay outside the default run (the marker's promise): ``-m soak`` runs them."""
    if "soak" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="a soak test: run it with -m soak")
    for item in items:
        if "soak" in item.keywords and "drift" in item.nodeid.split("::")[0]:
            item.add_marker(skip)

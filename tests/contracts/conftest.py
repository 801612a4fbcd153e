"""One contract suite, many identity providers.

A *harness* gives the suite an IdentityProvider and, where the provider can be made to fail,
a way to inject each fault. ``local`` and ``fake`` are defined here; each vendor adds a module
``tests/contracts/harness_<vendor>.py`` with an async context manager ``harness(ctx)`` (ctx holds
``database_url`` and ``tmp_path``) that yields a ``Harness``; this conftest finds them by name.
"""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

import tests.contracts as contracts_package
from accord.adapters.db.database import Database
from accord.adapters.db.engine import async_engine
from accord.adapters.db.tables import local_identities
from accord.adapters.idp.local import LocalProvider
from accord.domain.ports import IdentityProvider
from accord.testing import FakeIdentityProvider, Fault

FAULTS = ("unavailable", "rate_limited", "timeout", "ghost")


@dataclass
class Context:
    database_url: str
    tmp_path: Path


@dataclass
class Harness:
    provider: IdentityProvider
    # inject(fault, method): make the next call of method ("create", "get", ...) fail so.
    inject: Callable[[str, str], Any] | None = None
    supported_faults: tuple[str, ...] = field(default=FAULTS)
    # Lookups by e-mail may be eventually consistent (Auth0 search): the suite waits via this.
    settle: Callable[[], Any] | None = None
    # Loads many users straight into the provider's store, for the listing tests.
    seed_users: Callable[[list[str]], Any] | None = None


@asynccontextmanager
async def local_harness(ctx: Context) -> AsyncIterator[Harness]:
    db = Database(async_engine(ctx.database_url, pool_size=4))

    async def seed_users(emails: list[str]) -> None:
        rows = [{"id": str(uuid.uuid4()), "email": e} for e in emails]
        async with db.transaction() as conn:
            await conn.execute(insert(local_identities), rows)

    try:
        yield Harness(LocalProvider(db), inject=None, supported_faults=(), seed_users=seed_users)
    finally:
        await db.dispose()


@asynccontextmanager
async def fake_harness(ctx: Context) -> AsyncIterator[Harness]:
    fake = FakeIdentityProvider()

    async def inject(fault: str, method: str) -> None:
        fake.script(method, Fault(fault))

    yield Harness(fake, inject=inject)


HarnessFactory = Callable[[Context], AbstractAsyncContextManager[Harness]]
HARNESSES: dict[str, HarnessFactory] = {"local": local_harness, "fake": fake_harness}

for module in pkgutil.iter_modules(contracts_package.__path__):
    if module.name.startswith("harness_"):
        vendor = importlib.import_module(f"tests.contracts.{module.name}")
        HARNESSES[module.name.removeprefix("harness_")] = vendor.harness


# The local IdP is accord's own database: there is no wire to break, so no fault to inject.
WITHOUT_FAULT_INJECTION = {"local"}


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest, database_url: str, tmp_path: Path):
    async with HARNESSES[request.param](Context(database_url, tmp_path)) as h:
        yield h


@pytest.fixture(params=sorted(set(HARNESSES) - WITHOUT_FAULT_INJECTION))
async def faulty_harness(request: pytest.FixtureRequest, database_url: str, tmp_path: Path):
    """A harness whose provider can be made to fail on demand."""
    async with HARNESSES[request.param](Context(database_url, tmp_path)) as h:
        yield h

"""The engine's tests run against every identity provider that can host them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from accord.bootstrap import Accord, build
from accord.config import Settings
from accord.domain.callers import Caller
from accord.services.organizations import NewOrganization, create_organization
from tests.contracts.conftest import HARNESSES, WITHOUT_FAULT_INJECTION, Context

PLATFORM = Caller.platform("token:platform", "admin@platform.test")


@asynccontextmanager
async def open_app(name: str, settings: Settings, ctx: Context) -> AsyncIterator[Accord]:
    """accord with the named IdP: ``local``, or a contract harness's provider (the fake, or a
    vendor adapter talking to its emulator over loopback HTTP)."""
    if name == "local":
        instance = build(settings)
        try:
            yield instance
        finally:
            await instance.aclose()
        return
    async with HARNESSES[name](ctx) as harness:
        instance = build(settings, idp=harness.provider)
        instance.harness = harness  # type: ignore[attr-defined]  # for fault injection
        try:
            yield instance
        finally:
            await instance.db.dispose()


@pytest.fixture(params=sorted(HARNESSES))
async def app(
    request: pytest.FixtureRequest, settings: Settings, database_url: str, tmp_path: Path
) -> AsyncIterator[Accord]:
    """accord on this test's database, with each IdP in turn."""
    async with open_app(request.param, settings, Context(database_url, tmp_path)) as instance:
        yield instance


@pytest.fixture(params=sorted(set(HARNESSES) - WITHOUT_FAULT_INJECTION))
async def faulty_app(
    request: pytest.FixtureRequest, settings: Settings, database_url: str, tmp_path: Path
) -> AsyncIterator[Accord]:
    """accord with each IdP that faults can be injected into (``app.harness.inject``)."""
    async with open_app(request.param, settings, Context(database_url, tmp_path)) as instance:
        yield instance


async def new_org(app: Accord, name: str = "Acme", max_users: int = 10) -> UUID:
    org = await create_organization(
        app, NewOrganization(name=name, max_users=max_users), caller=PLATFORM
    )
    return UUID(org["id"])


async def scalar(app: Accord, sql: str, **params: Any) -> Any:
    from sqlalchemy import text

    async with app.db.transaction() as conn:
        return (await conn.execute(text(sql), params)).scalar()

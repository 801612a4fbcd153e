"""The engine's tests run against every identity provider that can host them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest

from accord.bootstrap import Accord, build
from accord.config import Settings
from accord.domain.callers import Caller
from accord.services.organizations import NewOrganization, create_organization

PLATFORM = Caller.platform("token:platform", "admin@platform.test")


@pytest.fixture(params=["local", "fake"])
async def app(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Accord]:
    """accord on this test's database, with each IdP in turn."""
    idp = None
    if request.param == "fake":
        from accord.testing import FakeIdentityProvider

        idp = FakeIdentityProvider()
    instance = build(settings, idp=idp)
    try:
        yield instance
    finally:
        await instance.aclose()


async def new_org(app: Accord, name: str = "Acme", max_users: int = 10) -> UUID:
    org = await create_organization(
        app, NewOrganization(name=name, max_users=max_users), caller=PLATFORM
    )
    return UUID(org["id"])


async def scalar(app: Accord, sql: str, **params: Any) -> Any:
    from sqlalchemy import text

    async with app.db.transaction() as conn:
        return (await conn.execute(text(sql), params)).scalar()

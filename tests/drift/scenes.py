"""Drift made on purpose, the way older code and failed requests leave it."""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import text

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.ports import IdentityProvider, NewRemoteUser
from accord.services.provisioning import NewUser, create_user
from tests.drift.conftest import sql
from tests.engine.conftest import PLATFORM


class Flaky:
    """A provider whose next calls of chosen methods fail as if the IdP were down."""

    def __init__(self, inner: IdentityProvider) -> None:
        self._inner = inner
        self.name = inner.name
        self._failures: Counter[str] = Counter()
        self._lost: Counter[str] = Counter()

    def fail(self, method: str, times: int = 1) -> None:
        self._failures[method] += times

    def lose_answer(self, method: str) -> None:
        """The next call of ``method`` is carried out, and then fails as if the IdP were down."""
        self._lost[method] += 1

    def _maybe_fail(self, method: str) -> None:
        if self._failures[method]:
            self._failures[method] -= 1
            raise errors.ProviderUnavailable(f"flaky: {method} is down")

    async def create(self, user: NewRemoteUser) -> Any:
        self._maybe_fail("create")
        made = await self._inner.create(user)
        if self._lost["create"]:
            self._lost["create"] -= 1
            raise errors.ProviderUnavailable("flaky: the answer to create was lost")
        return made

    async def update(self, remote_id: str, **changes: Any) -> Any:
        self._maybe_fail("update")
        return await self._inner.update(remote_id, **changes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def user(app: Accord, email: str, org: UUID) -> dict[str, Any]:
    """A user created the normal way; returns the user with its ``remote_id``."""
    result = await create_user(app, NewUser(email, email.split("@")[0], org), caller=PLATFORM)
    remote_id = await sql(
        app, "SELECT remote_id FROM idp_links WHERE user_id = :u", u=result["user"]["id"]
    )
    return {**result["user"], "remote_id": remote_id}


async def ghost_idp_user(app: Accord, email: str) -> str:
    """An IdP user accord created (its stamp) for a row that never came to be."""
    return (await app.idp.create(NewRemoteUser(uuid4(), email, "Ghost"))).remote_id


async def orphan_row(app: Accord, email: str, org: UUID) -> dict[str, Any]:
    """A finished user whose IdP user was deleted behind accord's back."""
    made = await user(app, email, org)
    await app.idp.delete(made["remote_id"])
    return made


async def unlinked_match(app: Accord, email: str, org: UUID) -> dict[str, Any]:
    """A finished user whose link was lost (both sides have the e-mail)."""
    made = await user(app, email, org)
    await sql(app, "DELETE FROM idp_links WHERE user_id = :u", u=made["id"])
    return made


async def email_mismatch(app: Accord, email: str, org: UUID, other: str) -> dict[str, Any]:
    """A linked user whose e-mail was changed in the IdP only."""
    made = await user(app, email, org)
    await app.idp.update(made["remote_id"], email=other)
    return made


async def never_finished_row(app: Accord, email: str) -> UUID:
    """A row left in `provisioning` by a request whose operation is gone (older code)."""
    user_id = uuid4()
    await sql(
        app,
        "INSERT INTO users (id, email, full_name, status) VALUES (:i, :e, 'Half', 'provisioning')",
        i=user_id,
        e=email,
    )
    return user_id


async def stuck_operation(app: Accord, email: str, org: UUID, *, past_deadline: bool) -> None:
    """An open operation nobody runs: past its deadline (its IdP user already created), or
    merely idle for an hour (its IdP call never made)."""
    real, flaky = app.idp, Flaky(app.idp)
    if past_deadline:
        flaky.lose_answer("create")
    else:
        flaky.fail("create")
    app.idp = flaky
    try:
        with pytest.raises(errors.OperationPending):
            await create_user(app, NewUser(email, "Stuck", org), caller=PLATFORM)
    finally:
        app.idp = real
    column = "deadline_at" if past_deadline else "next_attempt_at"
    await sql(
        app,
        f"UPDATE operations SET {column} = now() - interval '1 hour', lease_until = NULL "
        "WHERE request->>'email' = :e",
        e=email,
    )


async def duplicate_organization(app: Accord, owner_id: str, slug: str) -> None:
    """A second organization for a registrant, the way a database trigger made it (seed 001)."""
    org_id = uuid4()
    await sql(
        app,
        "INSERT INTO organizations (id, slug, display_name, kind, owner_user_id) "
        "VALUES (:o, :s, :s, 'team', :u)",
        o=org_id,
        s=slug,
        u=owner_id,
    )
    await sql(
        app,
        "INSERT INTO memberships (user_id, organization_id, role) VALUES (:u, :o, 'org_admin')",
        u=owner_id,
        o=org_id,
    )


async def snapshot(app: Accord) -> dict[str, Any]:
    """Everything a repair could change, to compare before and after."""
    async with app.db.transaction() as conn:

        def rows(statement: str) -> Any:
            return conn.execute(text(statement))

        users = sorted(
            (await rows("SELECT coalesce(email, former_email), status FROM users")).all()
        )
        links = sorted((await rows("SELECT user_id, remote_id FROM idp_links")).all())
        orgs = sorted((await rows("SELECT slug FROM organizations")).all())
        members = sorted(
            (await rows("SELECT user_id, organization_id, role FROM memberships")).all()
        )
        audit = (await rows("SELECT count(*) FROM audit_events")).scalar()
    remote = sorted([(u.remote_id, u.email) async for u in app.idp.iter_users()])
    return {
        "users": users,
        "links": links,
        "orgs": orgs,
        "members": members,
        "audit": audit,
        "remote": remote,
    }

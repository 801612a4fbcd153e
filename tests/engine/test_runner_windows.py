"""Windows between the phases of one operation, each paused at the exact point with a gated
provider: two runners finishing the same registration (the client's call and a worker after
its lease ran out), and an organization removed between the claim and the finalize."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from accord.bootstrap import Accord
from accord.domain import errors
from accord.services import worker
from accord.services.provisioning import NewUser, create_user
from accord.services.registration import Registration, register
from accord.testing import FakeIdentityProvider, FakeMailer
from tests.drift.test_races import Gated
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import make_everything_due

EMAIL = "kim@example.com"


async def test_two_runners_of_one_registration_make_one_organization(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    app = accord_fake
    gated = Gated(fake_idp, {"create": {EMAIL}})  # the first runner's create answers late
    app.idp = gated  # type: ignore[assignment]
    request = Registration(EMAIL, "correct horse battery", "Kim")
    first = asyncio.create_task(register(app, request, idempotency_key="k"))
    await gated.all_waiting.wait()
    await make_everything_due(app)  # its lease runs out while it waits: a worker takes over
    done = await worker.run_until_idle(app, FakeMailer())
    assert done.succeeded == 1
    gated.open()
    try:  # the first runner's compare-and-set finds the operation moved on: it commits nothing
        answer = await first
    except errors.OperationInProgress:
        answer = None
    replayed = await register(app, request, idempotency_key="k")  # G6: the stored answer
    assert answer is None or answer == replayed
    assert replayed["user"]["status"] == "active"
    assert await scalar(app, "SELECT count(*) FROM organizations") == 1  # G4: exactly one
    assert await scalar(app, "SELECT count(*) FROM memberships") == 1
    assert len(fake_idp.users) == 1
    app.idp = fake_idp
    await assert_guarantees(app)


async def test_an_organization_removed_between_claim_and_finalize_fails_the_operation(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    app = accord_fake
    org = await new_org(app)
    gated = Gated(fake_idp, {"create": {EMAIL}})
    app.idp = gated  # type: ignore[assignment]
    running = asyncio.create_task(create_user(app, NewUser(EMAIL, "Kim", org), caller=PLATFORM))
    await gated.all_waiting.wait()  # claimed, and the IdP user exists
    assert len(fake_idp.users) == 1
    async with app.db.transaction() as conn:
        await conn.execute(text("DELETE FROM organizations WHERE id = :o"), {"o": org})
    gated.open()
    with pytest.raises(errors.OrganizationNotFound, match="removed meanwhile"):
        await running
    assert await scalar(app, "SELECT state FROM operations") == "failed"
    assert await scalar(app, "SELECT count(*) FROM users") == 0  # no row (G7)
    assert fake_idp.users == {}  # the IdP user this operation created is deleted (G3)
    app.idp = fake_idp
    await assert_guarantees(app)

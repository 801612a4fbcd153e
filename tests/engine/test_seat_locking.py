"""Finding "creates into one organization wait for each other" (issue 12): the organization's row
was locked FOR UPDATE through the whole claim and again through finalize, so a create in its
finalize transaction held up every other create into that organization. Now the lock is held
only from the seat count to the claim's commit, and only against other claims: a create paused
inside its finalize transaction does not hold up a second one, and the seat limit stays exact
in that window (G5)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from accord.bootstrap import Accord
from accord.domain import errors
from accord.services.hooks import ProvisionedUser
from accord.services.provisioning import NewUser, create_user
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.patience import PATIENCE


class PausedFinalize:
    """An extension hook (it runs inside finalize's transaction) that holds one e-mail's
    finalize open until ``release``."""

    def __init__(self, email: str) -> None:
        self.email = email
        self.inside = asyncio.Event()
        self.released = asyncio.Event()

    async def __call__(self, conn: Any, user: ProvisionedUser) -> None:
        if user.email == self.email:
            self.inside.set()
            await self.released.wait()


async def test_a_create_inside_its_finalize_does_not_hold_up_another(accord: Accord) -> None:
    org = await new_org(accord, max_users=10)
    paused = PausedFinalize("first@example.com")
    accord.hooks.register(paused)
    first = asyncio.create_task(
        create_user(accord, NewUser("first@example.com", "First", org), caller=PLATFORM)
    )
    await asyncio.wait_for(paused.inside.wait(), PATIENCE)

    second = await asyncio.wait_for(
        create_user(accord, NewUser("second@example.com", "Second", org), caller=PLATFORM),
        PATIENCE,  # on main: waits for the first's lock, which waits for this test
    )
    assert second["user"]["status"] == "pending"
    waiting = await scalar(
        accord,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'",
    )
    assert waiting == 0
    paused.released.set()
    assert (await asyncio.wait_for(first, PATIENCE))["user"]["status"] == "pending"
    assert await scalar(accord, "SELECT count(*) FROM memberships") == 2
    await assert_guarantees(accord)


async def test_the_seat_of_a_create_inside_its_finalize_is_taken(accord: Accord) -> None:
    org = await new_org(accord, max_users=1)
    paused = PausedFinalize("first@example.com")
    accord.hooks.register(paused)
    first = asyncio.create_task(
        create_user(accord, NewUser("first@example.com", "First", org), caller=PLATFORM)
    )
    await asyncio.wait_for(paused.inside.wait(), PATIENCE)

    with pytest.raises(errors.OrganizationFull):
        await asyncio.wait_for(
            create_user(accord, NewUser("second@example.com", "Second", org), caller=PLATFORM),
            PATIENCE,
        )
    paused.released.set()
    await asyncio.wait_for(first, PATIENCE)
    with pytest.raises(errors.OrganizationFull):  # now a member's seat
        await create_user(accord, NewUser("third@example.com", "Third", org), caller=PLATFORM)
    assert await scalar(accord, "SELECT count(*) FROM memberships") == 1
    await assert_guarantees(accord)

"""Finding (issue 14's soak): deprovisioning a person while one of their organizations is deleted
deadlocked now and then. The deletion locks the organization, then its members' user rows; the
deprovisioning locked the user row, then the user's organizations. PostgreSQL broke the cycle by
failing one of them (a retryable 503). Both now take organizations first, then the user.

The test makes the interleaving that deadlocked certain instead of likely: it holds the user's
first organization (in id order) itself, so the deprovisioning stops at that lock; the deletion
of the other organization starts meanwhile; then the test lets go."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from uuid import UUID

from sqlalchemy import text

from accord.bootstrap import Accord
from accord.domain.model import Role
from accord.services.deprovisioning import deprovision_user
from accord.services.offboarding import delete_organization
from accord.services.provisioning import NewUser, create_user
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.patience import PATIENCE

WAITING_ON_LOCKS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock'"
)


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait (at least PATIENCE) for a state of the database nothing can announce."""
    for _ in range(int(PATIENCE / 0.02)):
        if await condition():
            return
        await asyncio.sleep(0.02)  # polling PostgreSQL's view of its own locks
    raise AssertionError(f"never happened: {what}")


async def test_deprovisioning_a_member_of_an_organization_being_deleted_never_deadlocks(
    accord: Accord,
) -> None:
    first, second = sorted([await new_org(accord, "Acme"), await new_org(accord, "Globex")])
    made = await create_user(accord, NewUser("ada@example.com", "Ada", first), caller=PLATFORM)
    ada = UUID(made["user"]["id"])
    async with accord.store.transaction() as tx:
        await tx.memberships.put(
            user_id=ada, organization_id=second, role=Role.ORG_USER, permissions=[]
        )

    async with accord.db.engine.connect() as holder:
        await holder.execute(
            text("SELECT id FROM organizations WHERE id = :o FOR UPDATE"), {"o": first}
        )
        leaving = asyncio.create_task(deprovision_user(accord, ada, caller=PLATFORM))

        async def deprovisioning_waits() -> bool:
            return leaving.done() or await scalar(accord, WAITING_ON_LOCKS) >= 1

        await until(deprovisioning_waits, "the deprovisioning waits for the held organization")
        deleting = asyncio.create_task(delete_organization(accord, second, caller=PLATFORM))

        async def deletion_done_or_waits() -> bool:
            return deleting.done() or await scalar(accord, WAITING_ON_LOCKS) >= 2

        await until(deletion_done_or_waits, "the deletion ran or waits")
        await holder.rollback()  # let go of the organization

    deprovisioned = await asyncio.wait_for(leaving, PATIENCE)  # on main: one raised a deadlock
    deleted = await asyncio.wait_for(deleting, PATIENCE)

    assert deprovisioned["status"] == "disabled"
    assert deleted["members_removed"] == 1
    assert await scalar(accord, "SELECT count(*) FROM memberships") == 0
    assert await scalar(accord, "SELECT status FROM users WHERE id = :u", u=ada) == "disabled"
    await assert_guarantees(accord)

"""Races on memberships, in real concurrent PostgreSQL transactions: a removal racing the last
other admin's demotion leaves one admin; additions racing for the last seats fill exactly them;
people who join organizations while they are being deprovisioned are deprovisioned whole, with
no deadlock between two such deprovisionings."""

from __future__ import annotations

import asyncio
import time
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import Role
from accord.services import members, organizations
from accord.services.deprovisioning import deprovision_user
from tests.patience import PATIENCE

PLATFORM = Caller.platform("test-races")


async def team(accord: Accord, name: str, max_users: int = 10) -> UUID:
    request = organizations.NewOrganization(name=name, max_users=max_users)
    org = await organizations.create_organization(accord, request, caller=PLATFORM)
    return UUID(org["id"])


async def person(accord: Accord, email: str) -> UUID:
    async with accord.store.transaction() as tx:
        user_id = await tx.users.insert_adopted(email=email, full_name="R", created_by="test")
    assert user_id is not None
    return user_id


async def test_a_removal_racing_the_last_admins_demotion_leaves_one_admin(
    accord: Accord,
) -> None:
    for round_ in range(5):
        org = await team(accord, f"Racers {round_}")
        first = await person(accord, f"a{round_}@race.test")
        second = await person(accord, f"b{round_}@race.test")
        for uid in (first, second):
            await members.put_member(accord, org, uid, role=Role.ORG_ADMIN, caller=PLATFORM)

        outcomes = await asyncio.gather(
            members.remove_member(accord, org, first, caller=PLATFORM),
            members.put_member(accord, org, second, role=Role.ORG_USER, caller=PLATFORM),
            return_exceptions=True,
        )

        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(refused) == 1 and isinstance(refused[0], errors.LastAdmin), outcomes
        async with accord.store.transaction() as tx:
            assert await tx.memberships.count_admins(org) == 1


async def test_additions_racing_for_the_last_seats_fill_exactly_them(accord: Accord) -> None:
    org = await team(accord, "Seats", max_users=3)
    people = [await person(accord, f"s{n}@race.test") for n in range(8)]

    outcomes = await asyncio.gather(
        *(
            members.put_member(accord, org, uid, role=Role.ORG_USER, caller=PLATFORM)
            for uid in people
        ),
        return_exceptions=True,
    )

    added = [o for o in outcomes if not isinstance(o, BaseException)]
    full = [o for o in outcomes if isinstance(o, errors.OrganizationFull)]
    assert (len(added), len(full)) == (3, 5), outcomes
    async with accord.store.transaction() as tx:
        assert await tx.memberships.count(org) == 3


async def waiting_for_locks(conn: AsyncConnection, count: int) -> None:
    """Return once ``count`` sessions of this database wait for a lock."""
    waiting = text(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE NOT l.granted AND a.datname = current_database()"
    )
    deadline = time.monotonic() + PATIENCE
    while (await conn.execute(waiting)).scalar_one() < count:
        assert time.monotonic() < deadline, "the deprovisionings never came to wait"
        await asyncio.sleep(0.01)


async def test_two_deprovisionings_whose_people_joined_meanwhile_both_finish(
    accord: Accord,
) -> None:
    """Each deprovisioning locks its person's organizations, then waits for the person's row;
    meanwhile each person joins the other's organization. Taking the newly joined organization
    then, out of id order, makes the two wait for each other (PostgreSQL kills one: a 503 for
    a request that did nothing wrong). They run their claims again instead and both finish.
    PostgreSQL's deadlock detection is put off here, so that the claims must avoid the cycle:
    breaking it only once detected (the claim's retry on a deadlock) would not pass."""
    async with accord.db.engine.connect() as conn:
        name = (await conn.execute(text("SELECT current_database()"))).scalar_one()
        await conn.execute(text(f"ALTER DATABASE \"{name}\" SET deadlock_timeout = '1h'"))
        await conn.commit()
    await accord.db.engine.dispose()  # the pool's connections start anew, with that setting
    low, high = sorted([await team(accord, "Low"), await team(accord, "High")])
    first, second = (
        await person(accord, "first@race.test"),
        await person(accord, "second@race.test"),
    )
    await members.put_member(accord, low, first, role=Role.ORG_USER, caller=PLATFORM)
    await members.put_member(accord, high, second, role=Role.ORG_USER, caller=PLATFORM)

    async with accord.db.engine.connect() as holder, accord.db.engine.connect() as watcher:
        await holder.begin()  # stands for the joins that wait on the people's rows
        both = {"ids": [first, second]}
        await holder.execute(text("SELECT 1 FROM users WHERE id = ANY(:ids) FOR UPDATE"), both)
        running = [
            asyncio.create_task(deprovision_user(accord, str(uid), caller=PLATFORM))
            for uid in (first, second)
        ]
        await waiting_for_locks(watcher, 2)
        joins = [(first, high), (second, low)]
        for user_id, org_id in joins:
            await holder.execute(
                text(
                    "INSERT INTO memberships (user_id, organization_id, role) VALUES (:u, :o, :r)"
                ),
                {"u": user_id, "o": org_id, "r": Role.ORG_USER.value},
            )
        await holder.commit()
        together = asyncio.gather(*running, return_exceptions=True)
        outcomes = await asyncio.wait_for(together, PATIENCE)

    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    async with accord.store.transaction() as tx:
        for uid in (first, second):
            assert await tx.memberships.organizations_of(uid) == []
            user = await tx.users.get(uid)
            assert user is not None and user.email is None  # retired

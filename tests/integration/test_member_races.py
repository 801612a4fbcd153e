"""Races on memberships, in real concurrent PostgreSQL transactions: a removal racing the last
other admin's demotion leaves one admin; additions racing for the last seats fill exactly them."""

from __future__ import annotations

import asyncio
from uuid import UUID

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import Role
from accord.services import members, organizations

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

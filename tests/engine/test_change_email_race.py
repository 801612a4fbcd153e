"""An e-mail change racing a create of the new address, with real concurrency on PostgreSQL:
exactly one user has the address afterwards, in both systems (G1, G2)."""

from __future__ import annotations

import asyncio

from accord.bootstrap import Accord
from accord.domain import errors
from accord.services.profile import ProfileChange, update_user
from accord.services.provisioning import NewUser, create_user
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees

ROUNDS = 8


async def test_a_change_racing_a_create_of_the_new_address_gives_it_to_one_user(
    app: Accord,
) -> None:
    org = await new_org(app, max_users=4 * ROUNDS)
    winners = {"change": 0, "create": 0}
    for i in range(ROUNDS):
        made = await create_user(app, NewUser(f"old{i}@example.com", "Old", org), caller=PLATFORM)
        new = f"new{i}@example.com"
        change = update_user(app, made["user"]["id"], ProfileChange(email=new), caller=PLATFORM)
        create = create_user(app, NewUser(new, "Newcomer", org), caller=PLATFORM)
        racers = (change, create) if i % 2 else (create, change)
        outcomes = await asyncio.gather(*racers, return_exceptions=True)
        if i % 2 == 0:
            outcomes = outcomes[::-1]
        won = [
            name
            for name, o in zip(("change", "create"), outcomes, strict=True)
            if isinstance(o, dict)
        ]
        lost = [o for o in outcomes if not isinstance(o, dict)]
        assert len(won) == 1, outcomes
        assert all(isinstance(o, errors.EmailAlreadyExists | errors.IdentityExists) for o in lost)
        winners[won[0]] += 1
        holder = await scalar(app, "SELECT id::text FROM users WHERE email = :e", e=new)
        expected = made["user"]["id"] if won == ["change"] else outcomes[1]["user"]["id"]
        assert holder == expected
        remote = await scalar(app, "SELECT remote_id FROM idp_links WHERE user_id = :u", u=holder)
        assert (await app.idp.get(remote)).email == new  # the IdP agrees on who has it
    assert await scalar(app, "SELECT count(*) FROM operations WHERE state = 'open'") == 0
    await assert_guarantees(app)
    assert sum(winners.values()) == ROUNDS

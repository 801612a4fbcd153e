"""Finding "a stranger inherits a deleted user's organization" (issue 11): on main 2a4d142 a
registration for a deprovisioned user's e-mail reclaimed the row: same user id, VictimCo, its
members, org_admin. Now the address is a new person: new id, new personal organization."""

from __future__ import annotations

from uuid import UUID

from accord.bootstrap import Accord
from accord.domain.model import Role
from accord.services.deprovisioning import deprovision_user
from accord.services.provisioning import NewUser, create_user
from accord.services.registration import Registration, register
from tests.drift.conftest import sql
from tests.engine.conftest import PLATFORM, new_org
from tests.guarantees import assert_guarantees


async def _victim(accord: Accord) -> tuple[str, str]:
    made = await register(
        accord, Registration("victim@example.com", "victim's passphrase", "Victim", "VictimCo")
    )
    victim, victim_co = made["user"]["id"], made["organization"]["id"]
    mate = NewUser("mate@example.com", "Mate", UUID(victim_co), role=Role.ORG_USER)
    await create_user(accord, mate, caller=PLATFORM)
    await deprovision_user(accord, victim, caller=PLATFORM)
    return victim, victim_co


async def _check_new_person(accord: Accord, victim: str, victim_co: str, new_id: str) -> None:
    assert new_id != victim
    in_victim_co = await sql(
        accord,
        "SELECT count(*) FROM memberships WHERE user_id = :u AND organization_id = :o",
        u=new_id,
        o=victim_co,
    )
    assert in_victim_co == 0
    history = await sql(
        accord,
        "SELECT count(*) FROM audit_events WHERE subject_user_id = :u "
        "AND action IN ('user.registered', 'user.deprovisioned')",
        u=victim,
    )
    assert history == 2  # the former user's history still points at the former id
    former = await sql(accord, "SELECT former_email FROM users WHERE id = :u", u=victim)
    assert former == "victim@example.com"


async def test_registering_a_deprovisioned_email_is_a_new_person(accord: Accord) -> None:
    victim, victim_co = await _victim(accord)
    again = await register(
        accord, Registration("victim@example.com", "the stranger's pass", "Stranger")
    )
    assert again["organization"]["id"] != victim_co
    await _check_new_person(accord, victim, victim_co, again["user"]["id"])
    await assert_guarantees(accord)


async def test_admin_creation_of_a_deprovisioned_email_is_a_new_person(accord: Accord) -> None:
    victim, victim_co = await _victim(accord)
    acme = await new_org(accord, "Acme")
    again = await create_user(
        accord, NewUser("victim@example.com", "Stranger", acme), caller=PLATFORM
    )
    assert [m["organization_id"] for m in again["user"]["organizations"]] == [str(acme)]
    await _check_new_person(accord, victim, victim_co, again["user"]["id"])
    await assert_guarantees(accord)

"""Finding "an organization token takes over or deletes accounts it never created" (issue 11):
on main 2a4d142 an org token adopted any IdP user found by e-mail (rewrote its name, reset its
password) and its DELETE removed it from the IdP; another tenant's user answered 403. Now a
foreign identity is never adopted silently, and an org DELETE only removes the membership."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import pytest

from accord.config import Settings
from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import CredentialMode, Role
from accord.services import reads
from accord.services.deprovisioning import deprovision_user
from accord.services.offboarding import delete_organization
from accord.services.provisioning import NewUser, create_user
from tests.drift.conftest import OPENERS, Planted, sql
from tests.engine.conftest import PLATFORM, new_org
from tests.guarantees import assert_guarantees


@pytest.fixture(params=["local", "auth0", "keycloak", "supabase"])
async def planted(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Planted]:
    async with OPENERS[request.param](settings) as instance:
        yield instance


async def test_a_foreign_identity_is_never_taken_over(planted: Planted) -> None:
    app = planted.app
    acme = await new_org(app, "Acme")
    org_token = Caller.organization("token:acme", acme)
    await planted.plant_foreign("staff@example.com")
    before = await app.idp.find_by_email("staff@example.com")
    assert before is not None
    for caller in (org_token, PLATFORM):
        with pytest.raises(errors.IdentityExists, match="adopt_existing"):
            await create_user(
                app,
                NewUser(
                    "staff@example.com", "Mallory", acme, credential=CredentialMode.TEMP_PASSWORD
                ),
                caller=caller,
            )
        assert await app.idp.find_by_email("staff@example.com") == before  # untouched
        assert await sql(app, "SELECT count(*) FROM users") == 0  # G7: no row left
    with pytest.raises(errors.Forbidden):  # an org token may not even ask
        await create_user(
            app, NewUser("staff@example.com", "M", acme, adopt_existing=True), caller=org_token
        )

    adopted = await create_user(
        app, NewUser("staff@example.com", "Staff", acme, adopt_existing=True), caller=PLATFORM
    )
    assert adopted["reused_identity"] is True and adopted["credential"] is None
    assert adopted["temporary_password"] is None
    assert await app.idp.find_by_email("staff@example.com") == before  # nothing changed
    assert await sql(app, "SELECT created_by_accord FROM idp_links") is False
    assert await sql(app, "SELECT count(*) FROM outbox WHERE kind = 'invitation'") == 0
    await assert_guarantees(app)

    # An org DELETE of the adopted user: only the membership goes, the IdP user stays.
    user_id = adopted["user"]["id"]
    removed = await deprovision_user(app, user_id, caller=org_token)
    assert removed["removed_from_organization"] == str(acme)
    assert await app.idp.find_by_email("staff@example.com") == before
    assert await sql(app, "SELECT count(*) FROM memberships") == 0
    assert (
        await sql(app, "SELECT count(*) FROM audit_events WHERE action = 'membership.removed'") == 1
    )


async def test_adoption_with_a_credential_is_audited_as_a_reset(planted: Planted) -> None:
    app = planted.app
    acme = await new_org(app, "Acme")
    await planted.plant_foreign("staff@example.com")
    new = NewUser(
        "staff@example.com",
        "Staff",
        acme,
        adopt_existing=True,
        credential=CredentialMode.TEMP_PASSWORD,
    )
    made = await create_user(app, new, caller=PLATFORM)
    assert made["temporary_password"]
    actor = await sql(app, "SELECT actor FROM audit_events WHERE action = 'user.credential_reset'")
    assert actor == PLATFORM.actor
    await assert_guarantees(app)


async def test_an_org_delete_of_a_shared_user_keeps_the_other_membership(planted: Planted) -> None:
    app = planted.app
    acme, beta = await new_org(app, "Acme"), await new_org(app, "Beta")
    made = await create_user(app, NewUser("ada@example.com", "Ada", acme), caller=PLATFORM)
    user_id = made["user"]["id"]

    async with app.store.transaction() as tx:
        await tx.memberships.put(
            user_id=UUID(user_id),
            organization_id=beta,
            role=Role.ORG_USER,
            permissions=[],
        )
    removed = await deprovision_user(app, user_id, caller=Caller.organization("token:a", acme))
    assert removed["removed_from_organization"] == str(acme)
    assert await app.idp.find_by_email("ada@example.com") is not None
    orgs = await sql(app, "SELECT organization_id FROM memberships")
    assert orgs == beta
    await assert_guarantees(app)


async def test_another_tenants_user_looks_missing(planted: Planted) -> None:
    app = planted.app
    acme, beta = await new_org(app, "Acme"), await new_org(app, "Beta")
    theirs = await create_user(app, NewUser("bea@example.com", "Bea", beta), caller=PLATFORM)
    mine = Caller.organization("token:acme", acme)
    for user_id in (theirs["user"]["id"], str(uuid4())):
        with pytest.raises(errors.UserNotFound, match=f"^No user {user_id}.$"):
            await reads.get_user(app, user_id, caller=mine)
        with pytest.raises(errors.UserNotFound, match=f"^No user {user_id}.$"):
            await deprovision_user(app, user_id, caller=mine)
    assert await app.idp.find_by_email("bea@example.com") is not None


async def test_offboarding_an_organization_keeps_a_foreign_identity_it_adopted(
    planted: Planted,
) -> None:
    """The organization goes, and the person with it, but an identity another system made is
    only unlinked: offboarding names an organization, not that identity."""
    app = planted.app
    acme = await new_org(app, "Acme")
    await planted.plant_foreign("staff@example.com")
    before = await app.idp.find_by_email("staff@example.com")
    request = NewUser("staff@example.com", "Staff", acme, adopt_existing=True)
    staff = (await create_user(app, request, caller=PLATFORM))["user"]["id"]

    report = await delete_organization(app, acme, caller=PLATFORM)

    assert (report["users_deprovisioned"], report["identities_kept"]) == (1, 1)
    assert await app.idp.find_by_email("staff@example.com") == before  # untouched
    assert await sql(app, "SELECT status FROM users WHERE id = :u", u=staff) == "disabled"
    assert await sql(app, "SELECT count(*) FROM idp_links") == 0
    await assert_guarantees(app)

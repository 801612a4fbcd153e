"""Offboarding an organization: its tokens, memberships and the people it leaves behind go, in
both systems; people who belong elsewhere, and identities accord did not make, stay."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import Role
from accord.services import invitations, tokens, worker
from accord.services.offboarding import delete_organization
from accord.services.provisioning import NewUser, create_user
from accord.testing import FakeIdentityProvider, FakeMailer
from accord.testing.fake_idp import Fault
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import make_everything_due


async def member(app: Accord, org: UUID, email: str) -> str:
    request = NewUser(email=email, full_name="Member", organization_id=org)
    result = await create_user(app, request, caller=PLATFORM)
    return result["user"]["id"]


async def rows(app: Accord, sql: str) -> list[tuple]:
    from sqlalchemy import text

    async with app.db.transaction() as conn:
        return [tuple(row) for row in await conn.execute(text(sql))]


async def test_offboarding_removes_the_organization_and_the_people_it_leaves(
    app: Accord,
) -> None:
    acme, globex = await new_org(app, "Acme"), await new_org(app, "Globex")
    ada = await member(app, acme, "ada@example.com")
    bob = await member(app, acme, "bob@example.com")
    async with app.store.transaction() as tx:  # bob belongs to Globex too
        await tx.memberships.put(
            user_id=UUID(bob), organization_id=globex, role=Role.ORG_USER, permissions=[]
        )
    token, _ = await tokens.create_token(app, name="acme", organization_id=acme)
    await invitations.invite(app, invitations.Invite(acme, "ivy@example.com"), caller=PLATFORM)

    report = await delete_organization(app, acme, caller=PLATFORM)

    assert {k: v for k, v in report.items() if k != "operation_id"} == {
        "organization_id": str(acme),
        "slug": "acme",
        "members_removed": 2,
        "users_deprovisioned": 1,
        "invitations_revoked": 1,
        "tokens_revoked": 1,
        "identities_kept": 0,
        "identity_deletes_refused": [],
    }
    assert await scalar(app, "SELECT count(*) FROM organizations WHERE id = :o", o=acme) == 0
    with pytest.raises(errors.Unauthenticated):
        await tokens.authenticate(app, token)
    assert await app.idp.find_by_email("ada@example.com") is None
    statuses = dict(await rows(app, "SELECT coalesce(email, former_email), status FROM users"))
    assert statuses == {
        "ada@example.com": "disabled",
        "bob@example.com": "pending",  # still a member of Globex
    }
    orgs_of_bob = await scalar(
        app, "SELECT array_agg(organization_id) FROM memberships WHERE user_id = :u", u=bob
    )
    assert orgs_of_bob == [globex]
    assert await scalar(app, "SELECT count(*) FROM idp_links WHERE user_id = :u", u=ada) == 0
    audited = await scalar(
        app, "SELECT data FROM audit_events WHERE action = 'organization.deleted'"
    )
    assert audited["users_deprovisioned"] == 1 and audited["tokens_revoked"] == 1
    await assert_guarantees(app)


async def test_keep_users_only_removes_their_memberships(app: Accord) -> None:
    acme = await new_org(app, "Acme")
    ada = await member(app, acme, "ada@example.com")
    report = await delete_organization(app, acme, caller=PLATFORM, keep_users=True)
    assert report["members_removed"] == 1 and report["users_deprovisioned"] == 0
    assert await scalar(app, "SELECT status FROM users WHERE id = :u", u=ada) == "pending"
    assert await scalar(app, "SELECT count(*) FROM memberships") == 0
    assert await app.idp.find_by_email("ada@example.com") is not None
    await assert_guarantees(app)


async def test_a_retry_with_its_key_replays_the_report(app: Accord) -> None:
    acme = await new_org(app, "Acme")
    await member(app, acme, "ada@example.com")
    first = await delete_organization(app, acme, caller=PLATFORM, idempotency_key="bye")
    assert await delete_organization(app, acme, caller=PLATFORM, idempotency_key="bye") == first
    with pytest.raises(errors.OrganizationNotFound):  # without the key: it is gone
        await delete_organization(app, acme, caller=PLATFORM)
    assert await scalar(app, "SELECT count(*) FROM audit_events WHERE action = :a",
                        a="organization.deleted") == 1  # fmt: skip


async def test_only_a_platform_caller_offboards(app: Accord) -> None:
    acme = await new_org(app, "Acme")
    with pytest.raises(errors.Forbidden):
        await delete_organization(app, acme, caller=Caller.organization("t:acme", acme))
    with pytest.raises(errors.InvalidInput):
        await delete_organization(app, "not-an-id", caller=PLATFORM)
    with pytest.raises(errors.OrganizationNotFound):
        await delete_organization(app, uuid4(), caller=PLATFORM)
    assert await scalar(app, "SELECT count(*) FROM organizations") == 1


async def test_an_unreachable_idp_finishes_the_offboarding_later(faulty_app: Accord) -> None:
    app = faulty_app
    acme = await new_org(app, "Acme")
    await member(app, acme, "ada@example.com")
    await app.harness.inject("unavailable", "delete")  # type: ignore[attr-defined]

    with pytest.raises(errors.OperationPending):
        await delete_organization(app, acme, caller=PLATFORM, idempotency_key="bye")
    # Access ended with the claim, before the IdP answered.
    assert await scalar(app, "SELECT count(*) FROM organizations") == 0
    assert await scalar(app, "SELECT status FROM users") == "disabled"

    await make_everything_due(app)
    await worker.run_until_idle(app, FakeMailer())
    assert await scalar(app, "SELECT state FROM operations WHERE kind = :k",
                        k="delete_organization") == "succeeded"  # fmt: skip
    assert await app.idp.find_by_email("ada@example.com") is None
    replayed = await delete_organization(app, acme, caller=PLATFORM, idempotency_key="bye")
    assert replayed["users_deprovisioned"] == 1
    await assert_guarantees(app)


async def test_a_refused_identity_delete_leaves_that_user_disabled_and_linked(
    settings: object,
) -> None:
    from accord.bootstrap import build

    fake = FakeIdentityProvider()
    app = build(settings, idp=fake)  # type: ignore[arg-type]
    try:
        acme = await new_org(app, "Acme")
        ada = await member(app, acme, "ada@example.com")
        bea = await member(app, acme, "bea@example.com")
        fake.script("delete", Fault.REJECTED)  # the first delete is refused, the second goes

        report = await delete_organization(app, acme, caller=PLATFORM)

        refused = report["identity_deletes_refused"]
        assert len(refused) == 1 and refused[0] in (ada, bea)
        assert report["users_deprovisioned"] == 2
        assert len(fake.users) == 1  # the refused one: reconcile reports it
        still_linked = await scalar(app, "SELECT array_agg(user_id::text) FROM idp_links")
        assert still_linked == refused
        assert await scalar(app, "SELECT count(*) FROM users WHERE status <> 'disabled'") == 0
        await assert_guarantees(app)
    finally:
        await app.aclose()


async def test_a_flaky_idp_costs_an_offboarding_one_attempt_per_failure_not_the_whole_list(
    settings: object,
) -> None:
    """Every third delete fails: each attempt goes on from where the last one stopped, so the
    offboarding of 24 people ends, each identity deleted once. Started over each time, no
    attempt would get past the third person and the operation would give up."""
    from accord.bootstrap import build

    fake = FakeIdentityProvider()
    app = build(settings, idp=fake)  # type: ignore[arg-type]
    try:
        acme = await new_org(app, "Acme", max_users=30)
        for n in range(24):
            await member(app, acme, f"person{n}@example.com")
        assert len(fake.users) == 24

        fake.script("delete", Fault.UNAVAILABLE, after=2)
        with pytest.raises(errors.OperationPending):
            await delete_organization(app, acme, caller=PLATFORM)
        state = "SELECT state FROM operations WHERE kind = 'delete_organization'"
        attempts = 1
        while await scalar(app, state) == "open":
            assert attempts < 20, "the offboarding gets no further from one attempt to the next"
            fake.script("delete", Fault.UNAVAILABLE, after=2)
            await make_everything_due(app)
            await worker.run_once(app, FakeMailer())
            attempts += 1

        assert await scalar(app, state) == "succeeded"
        assert fake.users == {}
        deletes = [subject for method, subject in fake.calls if method == "delete"]
        # 24 deletes that went through, and one that failed in each attempt but the last
        assert len(deletes) == 24 + (attempts - 1) and len(set(deletes)) == 24
        assert await scalar(app, "SELECT count(*) FROM idp_links") == 0
        await assert_guarantees(app)
    finally:
        await app.aclose()

"""Each change a flow commits reaches the feed as its event type, with the subject as the API
shows it, in the order of the subject's versions; a failed operation leaves none (G12)."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import text

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.changes import EVENT_TYPES
from accord.domain.model import Role
from accord.services import invitations, members, worker
from accord.services.acceptance import accept
from accord.services.deprovisioning import deprovision_user
from accord.services.events import read_feed
from accord.services.merge import merge_organizations
from accord.services.offboarding import delete_organization
from accord.services.organizations import (
    NewOrganization,
    OrganizationUpdate,
    create_organization,
    update_organization,
)
from accord.services.profile import ProfileChange, update_user
from accord.services.provisioning import NewUser, create_user
from accord.services.reads import get_user
from accord.services.reconcile import ReconcileOptions, reconcile
from accord.services.registration import Registration, register
from accord.services.suspension import reactivate_user, suspend_user
from accord.testing import FakeIdentityProvider, FakeMailer
from accord.testing.fake_idp import Fault
from tests.guarantees import assert_guarantees
from tests.mailbox import make_everything_due

PLATFORM = Caller.platform("token:platform", "admin@platform.test")
PASSWORD = "a long enough password 42"


async def everything(accord: Accord) -> list[dict]:
    found, cursor = [], None
    while True:
        page = await read_feed(accord, caller=PLATFORM, after=cursor, limit=500)
        found += page["items"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return found


async def org(accord: Accord, name: str) -> UUID:
    made = await create_organization(accord, NewOrganization(name=name), caller=PLATFORM)
    return UUID(made["id"])


async def invited_token(accord: Accord, mailer: FakeMailer, org_id: UUID, email: str) -> str:
    await invitations.invite(accord, invitations.Invite(org_id, email), caller=PLATFORM)
    await worker.run_until_idle(accord, mailer)
    bodies = [m.body for m in mailer.sent if m.recipient == email]
    return re.findall(r"#token=([A-Za-z0-9_\-]+)", bodies[-1])[-1]


async def test_every_flow_writes_its_event_types(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    accord, mailer = accord_fake, FakeMailer()
    acme, globex = await org(accord, "Acme"), await org(accord, "Globex")
    renaming = OrganizationUpdate(display_name="ACME")
    await update_organization(accord, acme, renaming, caller=PLATFORM)
    made = await create_user(
        accord, NewUser("ada@example.com", "Ada", acme), caller=PLATFORM, idempotency_key="k-ada"
    )
    ada = made["user"]["id"]
    await update_user(accord, ada, ProfileChange(full_name="Ada L."), caller=PLATFORM)
    await update_user(accord, ada, ProfileChange(email="ada.l@example.com"), caller=PLATFORM)
    await members.put_member(accord, globex, ada, role=Role.ORG_USER, caller=PLATFORM)
    await members.put_member(
        accord, globex, ada, role=Role.ORG_USER, permissions=("read",), caller=PLATFORM
    )
    await members.remove_member(accord, globex, ada, caller=PLATFORM)
    await suspend_user(accord, ada, caller=PLATFORM)
    await reactivate_user(accord, ada, caller=PLATFORM)
    await deprovision_user(accord, ada, caller=PLATFORM)
    token = await invited_token(accord, mailer, acme, "ivy@example.com")
    await accept(accord, token, full_name="Ivy", password=PASSWORD)
    revoked = await invitations.invite(
        accord, invitations.Invite(acme, "rex@example.com"), caller=PLATFORM
    )
    await invitations.revoke(accord, revoked[0]["id"], caller=PLATFORM)
    await invitations.invite(accord, invitations.Invite(acme, "old@example.com"), caller=PLATFORM)
    async with accord.db.transaction() as conn:  # let its time pass
        await conn.execute(text("UPDATE invitations SET expires_at = now() - interval '1 hour'"))
    await worker.housekeeping(accord, worker.Pass())
    await register(accord, Registration("bob@example.com", PASSWORD, "Bob"))
    merged_from = await org(accord, "Initech")
    await create_user(accord, NewUser("cy@example.com", "Cy", merged_from), caller=PLATFORM)
    await merge_organizations(accord, str(merged_from), str(globex), caller=PLATFORM, apply=True)
    await delete_organization(accord, globex, caller=PLATFORM)
    orphan = await create_user(accord, NewUser("dee@example.com", "Dee", acme), caller=PLATFORM)
    remote = (await fake_idp.find_by_email("dee@example.com")).remote_id
    await fake_idp.delete(remote)  # behind accord's back: drift that reconcile repairs
    await reconcile(accord, ReconcileOptions(fix=True, orphan_rows="deprovision"))
    fake_idp.script("create", Fault.REJECTED)
    with pytest.raises(errors.RemoteRejected):  # a failed operation: no event of it
        await create_user(accord, NewUser("nope@example.com", "No", acme), caller=PLATFORM)

    feed = await everything(accord)

    assert {e["type"] for e in feed} == set(EVENT_TYPES)
    assert [e["sequence"] for e in feed] == list(range(1, len(feed) + 1))
    assert not [e for e in feed if e["data"] and e["data"].get("email") == "nope@example.com"]
    created = next(e for e in feed if e["type"] == "user.created" and e["subject"]["id"] == ada)
    assert created["idempotency_key"] == "k-ada" and created["operation_id"]
    assert created["data"]["email"] == "ada@example.com" and created["version"] == 1
    renamed = next(e for e in feed if e["type"] == "user.updated" and e["subject"]["id"] == ada)
    assert "full_name" in renamed["changed"] and renamed["data"]["full_name"] == "Ada L."
    latest = [e for e in feed if e["subject"]["id"] == orphan["user"]["id"]][-1]
    assert latest["type"] == "user.repaired"
    assert latest["data"] == await get_user(accord, orphan["user"]["id"], caller=PLATFORM)
    versions = defaultdict(list)
    for e in feed:
        versions[(e["subject"]["type"], e["subject"]["id"])].append(e["version"])
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values())


async def test_an_expired_cursor_answers_cursor_expired(accord_fake: Accord) -> None:
    accord = accord_fake
    for name in ("One", "Two", "Three"):
        await org(accord, name)
    first = await read_feed(accord, caller=PLATFORM, limit=1)
    async with accord.db.transaction() as conn:
        await conn.execute(text("UPDATE change_events SET occurred_at = :t"), {"t": _old()})
    result = worker.Pass()
    await worker.housekeeping(accord, result)
    assert result.deleted_feed_events == 3
    with pytest.raises(errors.CursorExpired) as expired:
        await read_feed(accord, caller=PLATFORM, after=first["next_cursor"])
    assert expired.value.details == {"oldest_cursor": "3"}
    await org(accord, "Four")
    fresh = await read_feed(accord, caller=PLATFORM)  # no cursor: from the oldest kept
    assert [e["data"]["display_name"] for e in fresh["items"]] == ["Four"]


def _old() -> datetime:
    return datetime.now(UTC) - timedelta(days=31)


async def test_a_repair_that_deprovisions_a_row_announces_the_memberships_it_ends(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    """A row whose IdP user is gone loses its memberships in the repair: a consumer that
    applies membership events must see them end (``membership.removed``), like any other."""
    accord = accord_fake
    acme, globex = await org(accord, "Acme"), await org(accord, "Globex")
    made = await create_user(accord, NewUser("eve@example.com", "Eve", acme), caller=PLATFORM)
    eve = made["user"]["id"]
    await members.put_member(accord, globex, eve, role=Role.ORG_ADMIN, caller=PLATFORM)
    remote = (await fake_idp.find_by_email("eve@example.com")).remote_id
    await fake_idp.delete(remote)  # behind accord's back
    await reconcile(accord, ReconcileOptions(fix=True, orphan_rows="deprovision"))

    latest = {}
    for e in await everything(accord):
        latest[(e["subject"]["type"], e["subject"]["id"])] = e
    ended = [latest[("membership", f"{eve}:{o}")] for o in (acme, globex)]
    assert [(e["type"], e["data"]) for e in ended] == [("membership.removed", None)] * 2
    assert latest[("user", eve)]["data"]["status"] == "disabled"
    assert (await get_user(accord, eve, caller=PLATFORM))["organizations"] == []


@pytest.mark.parametrize("idp", ["refuses the deletes", "stays unavailable"])
async def test_an_offboarding_announces_the_people_it_deprovisions_whatever_the_idp_says(
    accord_fake: Accord, fake_idp: FakeIdentityProvider, idp: str
) -> None:
    """The people who leave with an organization are disabled in the offboarding's claim: a
    consumer of the feed must hear it then, not only if their identities are deleted later (a
    refused delete, or an operation that gives up, would leave them active in its copy)."""
    accord = accord_fake
    acme = await org(accord, "Acme")
    people = [
        (await create_user(accord, NewUser(f"{n}@example.com", n, acme), caller=PLATFORM))["user"]
        for n in ("ada", "bea")
    ]
    if idp == "refuses the deletes":
        fake_idp.script("delete", Fault.REJECTED, times=2)
        report = await delete_organization(accord, acme, caller=PLATFORM)
        assert len(report["identity_deletes_refused"]) == 2
    else:
        fake_idp.script("delete", Fault.UNAVAILABLE, times=1000)
        with pytest.raises(errors.OperationPending):
            await delete_organization(accord, acme, caller=PLATFORM)
        async with accord.db.transaction() as conn:
            budget = accord.settings.operation_max_attempts
            await conn.execute(text("UPDATE operations SET attempts = :n"), {"n": budget + 1})
        await make_everything_due(accord)
        assert (await worker.run_until_idle(accord, FakeMailer())).failed == 1

    latest = {}
    for e in await everything(accord):
        latest[(e["subject"]["type"], e["subject"]["id"])] = e
    for person in people:
        now = await get_user(accord, person["id"], caller=PLATFORM)
        assert now["status"] == "disabled"
        assert latest[("user", person["id"])]["data"] == now, "the feed still holds them active"
    await assert_guarantees(accord)

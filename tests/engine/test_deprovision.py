"""Deprovisioning: the IdP user goes, access goes, and it can be repeated."""

from __future__ import annotations

from uuid import UUID

import pytest

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.callers import Caller
from accord.services.deprovisioning import deprovision_user
from accord.services.provisioning import NewUser, create_user
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees


async def make_user(app: Accord, org: UUID, email: str = "ada@example.com") -> dict:
    result = await create_user(
        app, NewUser(email=email, full_name="Ada", organization_id=org), caller=PLATFORM
    )
    return result["user"]


async def test_deprovision_removes_identity_memberships_and_access(app: Accord) -> None:
    org = await new_org(app)
    user = await make_user(app, org)
    result = await deprovision_user(app, user["id"], caller=PLATFORM)
    assert result["status"] == "disabled"
    assert await app.idp.find_by_email("ada@example.com") is None
    assert await scalar(app, "SELECT status FROM users") == "disabled"
    for table in ("memberships", "idp_links", "outbox"):
        assert await scalar(app, f"SELECT count(*) FROM {table}") == 0, table
    assert (
        await scalar(app, "SELECT count(*) FROM audit_events WHERE action = 'user.deprovisioned'")
        == 1
    )
    await assert_guarantees(app)


async def test_deprovision_is_idempotent(app: Accord) -> None:
    org = await new_org(app)
    user = await make_user(app, org)
    first = await deprovision_user(app, user["id"], caller=PLATFORM, idempotency_key="d1")
    assert await deprovision_user(app, user["id"], caller=PLATFORM, idempotency_key="d1") == first
    again = await deprovision_user(app, user["id"], caller=PLATFORM)
    assert again["status"] == "disabled"
    await assert_guarantees(app)


async def test_a_deprovisioned_user_can_be_created_again(app: Accord) -> None:
    org = await new_org(app)
    user = await make_user(app, org)
    await deprovision_user(app, user["id"], caller=PLATFORM)
    again = await make_user(app, org)
    assert again["id"] != user["id"]  # a new person: the deprovisioned row keeps its history
    assert again["status"] == "pending"
    former = await scalar(
        app, "SELECT former_email || ' ' || status FROM users WHERE id = :i", i=user["id"]
    )
    assert former == "ada@example.com disabled"
    await assert_guarantees(app)


async def test_deprovisioning_the_former_user_again_leaves_the_new_persons_mail(
    app: Accord,
) -> None:
    """The address a deprovisioned user had may be a new person's: repeating the former's
    deprovisioning touches nothing of theirs (their set-password mail still goes)."""
    org = await new_org(app)
    former = await make_user(app, org)
    await deprovision_user(app, former["id"], caller=PLATFORM)
    newcomer = await make_user(app, org)
    await deprovision_user(app, former["id"], caller=PLATFORM)
    waiting = await scalar(
        app,
        "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND payload->>'user_id' = :i",
        i=newcomer["id"],
    )
    assert waiting == 1
    await assert_guarantees(app)


async def test_an_org_admin_cannot_remove_a_user_of_another_organization(app: Accord) -> None:
    mine, theirs = await new_org(app, "Mine"), await new_org(app, "Theirs")
    victim = await make_user(app, theirs)
    with pytest.raises(errors.UserNotFound):  # G10: as if it did not exist
        await deprovision_user(app, victim["id"], caller=Caller.organization("t:mine", mine))
    assert await scalar(app, "SELECT status FROM users") == "pending"
    own = await make_user(app, mine, "own@example.com")
    result = await deprovision_user(app, own["id"], caller=Caller.organization("t:mine", mine))
    assert result["status"] == "disabled"


async def test_unknown_user(app: Accord) -> None:
    with pytest.raises(errors.UserNotFound):
        await deprovision_user(app, "00000000-0000-0000-0000-000000000000", caller=PLATFORM)
    with pytest.raises(errors.InvalidInput):
        await deprovision_user(app, "nope", caller=PLATFORM)

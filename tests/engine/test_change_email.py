"""E-mail and name changes across both systems (services/profile.py): committed in both, or
compensated back to the old address in both."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import pytest

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.callers import Caller
from accord.services import worker
from accord.services.profile import ProfileChange, update_user
from accord.services.provisioning import NewUser, create_user
from accord.testing import FakeIdentityProvider, FakeMailer, Fault
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import make_everything_due


async def make_user(app: Accord, org: UUID, email: str = "ada@example.com") -> dict[str, Any]:
    made = await create_user(
        app, NewUser(email=email, full_name="Ada Lovelace", organization_id=org), caller=PLATFORM
    )
    return made["user"]


async def idp_view(app: Accord, email: str) -> tuple[str, str | None] | None:
    found = await app.idp.find_by_email(email)
    return None if found is None else (found.email, found.full_name)


async def test_an_email_and_name_change_lands_in_both_systems(app: Accord) -> None:
    org = await new_org(app)
    ada = await make_user(app, org)
    change = ProfileChange(email="Ada.King@Example.com", full_name="Ada King")
    result = await update_user(app, ada["id"], change, caller=PLATFORM)
    assert result["operation_id"] is not None
    assert (result["user"]["email"], result["user"]["full_name"]) == (
        "ada.king@example.com",
        "Ada King",
    )
    link = await scalar(app, "SELECT remote_id FROM idp_links")
    remote = await app.idp.get(link)
    assert (remote.email, remote.full_name) == ("ada.king@example.com", "Ada King")
    assert await scalar(app, "SELECT version FROM users") > 1
    assert await scalar(app, "SELECT count(*) FROM users") == 1  # the reservation is gone
    data = await scalar(app, "SELECT data FROM audit_events WHERE action = 'user.email_changed'")
    assert data == {"old": "ada@example.com", "new": "ada.king@example.com"}
    notice = await scalar(app, "SELECT recipient FROM outbox WHERE kind = 'email_changed'")
    assert notice == "ada@example.com"  # the old address hears of it
    await assert_guarantees(app)


async def test_the_same_email_is_a_no_op(accord_fake: Accord) -> None:
    org = await new_org(accord_fake)
    ada = await make_user(accord_fake, org)
    result = await update_user(
        accord_fake, ada["id"], ProfileChange(email="ADA@example.com"), caller=PLATFORM
    )
    assert result["operation_id"] is None and result["user"] == ada
    assert await scalar(accord_fake, "SELECT count(*) FROM operations") == 1  # the create only


async def test_a_foreign_identity_with_the_address_refuses_and_leaves_both_unchanged(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    org = await new_org(accord_fake)
    ada = await make_user(accord_fake, org)
    await fake_idp.create_direct("taken@example.com", "Someone Else")  # another system's
    with pytest.raises(errors.IdentityExists):
        await update_user(
            accord_fake, ada["id"], ProfileChange(email="taken@example.com"), caller=PLATFORM
        )
    assert await scalar(accord_fake, "SELECT email FROM users") == "ada@example.com"
    assert await idp_view(accord_fake, "ada@example.com") == ("ada@example.com", "Ada Lovelace")
    assert await scalar(accord_fake, "SELECT count(*) FROM users") == 1
    assert await scalar(
        accord_fake, "SELECT state FROM operations WHERE kind = 'change_email'"
    ) == ("failed")
    await assert_guarantees(accord_fake)


async def test_a_rejection_after_the_idp_changed_compensates_to_the_old_address_in_both(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    org = await new_org(accord_fake)
    ada = await make_user(accord_fake, org)
    app = accord_fake

    async def refuse(*args: Any, **kwargs: Any) -> Any:  # the database refuses after the IdP
        raise errors.HookFailed("the finalize failed")

    from accord.services import profile

    original = profile.ChangeProfile.finalize
    profile.ChangeProfile.finalize = refuse  # type: ignore[method-assign]
    try:
        with pytest.raises(errors.HookFailed):
            await update_user(
                app,
                ada["id"],
                ProfileChange(email="new@example.com", full_name="N"),
                caller=PLATFORM,
            )
    finally:
        profile.ChangeProfile.finalize = original  # type: ignore[method-assign]
    assert await idp_view(app, "ada@example.com") == ("ada@example.com", "Ada Lovelace")
    assert await app.idp.find_by_email("new@example.com") is None
    assert await scalar(app, "SELECT email || ' ' || full_name FROM users") == (
        "ada@example.com Ada Lovelace"
    )
    assert await scalar(app, "SELECT count(*) FROM outbox WHERE kind = 'email_changed'") == 0
    await assert_guarantees(app)


async def test_an_outage_answers_pending_and_the_worker_finishes(
    faulty_app: Accord,
) -> None:
    app = faulty_app
    org = await new_org(app)
    ada = await make_user(app, org)
    await app.harness.inject("unavailable", "update")  # type: ignore[attr-defined]
    with pytest.raises(errors.OperationPending):
        await update_user(app, ada["id"], ProfileChange(email="new@example.com"), caller=PLATFORM)
    # While it waits, both systems keep the old address, and the new one stays reserved.
    assert await scalar(app, "SELECT email FROM users WHERE id = :i", i=ada["id"]) == (
        "ada@example.com"
    )
    with pytest.raises(errors.EmailAlreadyExists):
        await make_user(app, org, "new@example.com")
    await make_everything_due(app)
    done = await worker.run_until_idle(app, FakeMailer())
    assert done.succeeded >= 1
    assert await scalar(app, "SELECT email FROM users WHERE id = :i", i=ada["id"]) == (
        "new@example.com"
    )
    remote = await app.idp.get(await scalar(app, "SELECT remote_id FROM idp_links"))
    assert remote.email == "new@example.com"
    await assert_guarantees(app)


@pytest.mark.parametrize("fault", [Fault.UNAVAILABLE, Fault.GHOST, Fault.TIMEOUT])
async def test_a_retry_with_the_key_finishes_after_each_fault(
    accord_fake: Accord, fake_idp: FakeIdentityProvider, fault: Fault
) -> None:
    org = await new_org(accord_fake)
    ada = await make_user(accord_fake, org)
    fake_idp.script("update", fault)
    change = ProfileChange(email="new@example.com")
    with pytest.raises(errors.OperationPending):
        await update_user(accord_fake, ada["id"], change, caller=PLATFORM, idempotency_key="k")
    done = await update_user(accord_fake, ada["id"], change, caller=PLATFORM, idempotency_key="k")
    assert done["user"]["email"] == "new@example.com"
    again = await update_user(accord_fake, ada["id"], change, caller=PLATFORM, idempotency_key="k")
    assert again == done  # G6: the stored answer
    assert [u.email for u in fake_idp.users.values()] == ["new@example.com"]
    await assert_guarantees(accord_fake)


async def test_the_address_taken_by_a_user_is_email_exists(accord_fake: Accord) -> None:
    org = await new_org(accord_fake)
    ada = await make_user(accord_fake, org)
    await make_user(accord_fake, org, "grace@example.com")
    with pytest.raises(errors.EmailAlreadyExists):
        await update_user(
            accord_fake, ada["id"], ProfileChange(email="grace@example.com"), caller=PLATFORM
        )
    await assert_guarantees(accord_fake)


async def test_a_deprovision_during_the_change_fails_it_cleanly(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    from accord.services.deprovisioning import deprovision_user

    org = await new_org(accord_fake)
    ada = await make_user(accord_fake, org)
    fake_idp.script("update", Fault.UNAVAILABLE)
    with pytest.raises(errors.OperationPending):
        await update_user(
            accord_fake, ada["id"], ProfileChange(email="n@example.com"), caller=PLATFORM
        )
    with pytest.raises(errors.OperationInProgress):  # one change of a user at a time
        await update_user(accord_fake, ada["id"], ProfileChange(full_name="X"), caller=PLATFORM)
    await deprovision_user(accord_fake, ada["id"], caller=PLATFORM)
    await make_everything_due(accord_fake)
    await worker.run_until_idle(accord_fake, FakeMailer())
    assert await scalar(
        accord_fake, "SELECT state FROM operations WHERE kind = 'change_email'"
    ) == ("failed")
    assert await scalar(accord_fake, "SELECT count(*) FROM users WHERE email IS NOT NULL") == 0
    await assert_guarantees(accord_fake)


async def test_an_organization_caller_changes_only_users_wholly_its_own(
    accord_fake: Accord,
) -> None:
    acme, beta = await new_org(accord_fake, "Acme"), await new_org(accord_fake, "Beta")
    ada = await make_user(accord_fake, acme)
    both = await make_user(accord_fake, acme, "both@example.com")
    from accord.domain.model import Role

    async with accord_fake.store.transaction() as tx:
        await tx.memberships.put(
            user_id=UUID(both["id"]), organization_id=beta, role=Role.ORG_USER, permissions=[]
        )
    acme_caller = Caller.organization("token:acme", acme)
    beta_caller = Caller.organization("token:beta", beta)
    changed = await update_user(
        accord_fake, ada["id"], ProfileChange(full_name="A"), caller=acme_caller
    )
    assert changed["user"]["full_name"] == "A"
    for caller, target in ((beta_caller, ada), (acme_caller, both)):
        with pytest.raises(errors.UserNotFound):
            await update_user(
                accord_fake, target["id"], ProfileChange(full_name="Z"), caller=caller
            )
    with pytest.raises(errors.Forbidden):
        await update_user(
            accord_fake, ada["id"], ProfileChange(is_platform_admin=True), caller=acme_caller
        )


async def test_concurrent_changes_to_one_address_give_it_to_one_user(accord_fake: Accord) -> None:
    org = await new_org(accord_fake)
    users = [await make_user(accord_fake, org, f"u{i}@example.com") for i in range(5)]
    outcomes = await asyncio.gather(
        *(
            update_user(
                accord_fake, u["id"], ProfileChange(email="one@example.com"), caller=PLATFORM
            )
            for u in users
        ),
        return_exceptions=True,
    )
    won = [o for o in outcomes if isinstance(o, dict)]
    assert len(won) == 1
    assert all(isinstance(o, errors.EmailAlreadyExists) for o in outcomes if o not in won)
    assert (
        await scalar(accord_fake, "SELECT count(*) FROM users WHERE email = 'one@example.com'") == 1
    )
    await assert_guarantees(accord_fake)

"""Registrations and organizations out of bounds are refused before anything is stored; and
the mail a person gets when they ask to set their password."""

from __future__ import annotations

import re

import pytest

from accord.domain import errors
from accord.domain.callers import Caller
from accord.services import credentials, worker
from accord.services.organizations import NewOrganization, create_organization
from accord.services.provisioning import NewUser, create_user
from accord.services.reads import list_users_page
from accord.services.registration import Registration, register
from accord.testing import FakeContext, FakeMailer, fake_context

PLATFORM = Caller.platform("token:platform", "admin@platform.test")
PASSWORD = "a chosen passphrase"


@pytest.fixture
def ctx() -> FakeContext:
    return fake_context()


@pytest.mark.parametrize("password", ["", "a long phrase " * 80])
async def test_a_missing_or_overlong_password_is_refused_and_nothing_is_made(
    ctx: FakeContext, password: str
) -> None:
    with pytest.raises(errors.PasswordRejected) as refused:
        await register(ctx, Registration("pat@example.com", password, "Pat"))
    assert "1024" in refused.value.message
    assert ctx.store.tables.users == {} and ctx.idp.users == {}


async def test_an_overlong_organization_name_is_refused_and_nothing_is_made(
    ctx: FakeContext,
) -> None:
    with pytest.raises(errors.InvalidInput) as refused:
        await register(ctx, Registration("pat@example.com", PASSWORD, "Pat", "Pat " * 30))
    assert "longer than 100" in refused.value.message
    assert ctx.store.tables.users == {} and ctx.store.tables.organizations == {}


async def test_asking_to_set_a_password_mails_a_link_that_sets_it(ctx: FakeContext) -> None:
    org = await create_organization(ctx, NewOrganization("Acme"), caller=PLATFORM)
    await create_user(ctx, NewUser("ada@example.com", "Ada", org["id"]), caller=PLATFORM)
    mailer = FakeMailer()
    await worker.run_until_idle(ctx, mailer)  # the invitation
    await credentials.request_password_setup(ctx, "ada@example.com")
    await worker.run_until_idle(ctx, mailer)
    invitation, reset = mailer.sent
    assert invitation.subject == "You have been invited: set your password"
    assert (reset.recipient, reset.subject) == ("ada@example.com", "Set your password")
    assert "asked to set the password" in reset.body
    (token,) = re.findall(r"#token=([\w-]+)", reset.body)
    done = await credentials.complete_password_setup(ctx, token, "my own good password")
    assert done["status"] == "active"


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        (NewOrganization("   "), "1 to 100 characters"),
        (NewOrganization("A" * 101), "1 to 100 characters"),
        (NewOrganization("Acme", max_users=0), "max_users must be between 1 and"),
        (NewOrganization("Acme", max_users=10**9), "max_users must be between 1 and"),
    ],
)
async def test_an_organization_out_of_bounds_is_refused_and_not_made(
    ctx: FakeContext, request_: NewOrganization, says: str
) -> None:
    with pytest.raises(errors.InvalidInput) as refused:
        await create_organization(ctx, request_, caller=PLATFORM)
    assert says in refused.value.message
    assert ctx.store.tables.organizations == {}


@pytest.mark.parametrize("limit", [0, 201])
async def test_a_user_listing_page_out_of_bounds_is_refused(ctx: FakeContext, limit: int) -> None:
    with pytest.raises(errors.InvalidInput, match="limit must be between 1 and 200"):
        await list_users_page(ctx, caller=PLATFORM, limit=limit)

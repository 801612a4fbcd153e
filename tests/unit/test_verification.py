"""Registration that proves the e-mail, on doubles: the same answer for a new and a taken
address, a link that makes the account once, expires, and is stored as a digest only."""

from __future__ import annotations

import hashlib
import re

import pytest

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import UserStatus
from accord.services import worker
from accord.services.deprovisioning import deprovision_user
from accord.services.registration import Registration, register
from accord.services.verification import request_registration, verify_registration
from accord.testing import FakeContext, FakeMailer, fake_context

PASSWORD = "a chosen passphrase"
PLATFORM = Caller.platform("token:platform", "admin@platform.test")


@pytest.fixture
def ctx() -> FakeContext:
    return fake_context()


def vera(email: str = "vera@example.com") -> Registration:
    return Registration(email, PASSWORD, "Vera", organization_name="Vera's")


async def mailed_token(ctx: FakeContext, mailer: FakeMailer, email: str) -> str:
    await worker.run_until_idle(ctx, mailer)
    (token,) = re.findall(
        r"#token=([\w-]+)", [m for m in mailer.sent if m.recipient == email][-1].body
    )
    return token


async def test_a_new_and_a_taken_address_get_the_same_answer_and_different_mail(
    ctx: FakeContext,
) -> None:
    await register(ctx, vera("owner@example.com"))
    mailer = FakeMailer()
    answers = [
        await request_registration(ctx, vera(e)) for e in ("vera@example.com", "owner@example.com")
    ]
    assert answers == [None, None]
    await worker.run_until_idle(ctx, mailer)
    subjects = {m.recipient: m.subject for m in mailer.sent}
    assert subjects == {
        "vera@example.com": "Confirm your e-mail address to finish signing up",
        "owner@example.com": "Someone tried to register with your e-mail address",
    }
    assert [u.email for u in ctx.store.tables.users.values()] == ["owner@example.com"]


async def test_the_link_makes_one_account_once(ctx: FakeContext) -> None:
    mailer = FakeMailer()
    await request_registration(ctx, vera())
    token = await mailed_token(ctx, mailer, "vera@example.com")
    ((digest, pending),) = ctx.store.tables.verifications.values()
    assert digest == hashlib.sha256(token.encode()).hexdigest()
    assert PASSWORD.encode() not in pending.sealed_secrets
    made = await verify_registration(ctx, token)
    assert made["user"]["status"] == UserStatus.ACTIVE and made["organization"]["slug"] == "vera-s"
    assert ctx.store.tables.verifications == {}  # used up, its sealed password with it
    with pytest.raises(errors.TokenInvalid):
        await verify_registration(ctx, token)
    assert len(ctx.store.tables.organizations) == 1


async def test_a_link_for_an_address_taken_meanwhile_stays_usable(ctx: FakeContext) -> None:
    mailer = FakeMailer()
    await request_registration(ctx, vera())
    token = await mailed_token(ctx, mailer, "vera@example.com")
    await register(ctx, vera())  # an operator vouched for the address meanwhile
    with pytest.raises(errors.EmailAlreadyExists):
        await verify_registration(ctx, token)
    assert len(ctx.store.tables.verifications) == 1  # the refused claim consumed nothing


async def test_a_link_expires_and_housekeeping_removes_it(ctx: FakeContext) -> None:
    mailer = FakeMailer()
    await request_registration(ctx, vera())
    token = await mailed_token(ctx, mailer, "vera@example.com")
    ctx.clock.advance(hours=ctx.settings.registration.link_ttl_hours + 1)
    with pytest.raises(errors.TokenInvalid):
        await verify_registration(ctx, token)
    result = worker.Pass()
    await worker.housekeeping(ctx, result)
    assert result.expired_verifications == 1 and ctx.store.tables.verifications == {}


async def test_a_mail_sent_again_carries_the_only_working_link(ctx: FakeContext) -> None:
    mailer = FakeMailer()
    await request_registration(ctx, vera())
    first = await mailed_token(ctx, mailer, "vera@example.com")
    (message,) = ctx.store.tables.outbox.values()
    ctx.store.tables.outbox[message.id] = message.__class__(
        message.id, message.kind, message.dedupe_key, message.recipient, message.payload, 1
    )  # as after a crash between sending and recording it: sent again once its lease ends
    ctx.clock.advance(seconds=600)
    second = await mailed_token(ctx, mailer, "vera@example.com")
    assert first != second
    with pytest.raises(errors.TokenInvalid):
        await verify_registration(ctx, first)
    assert (await verify_registration(ctx, second))["user"]["email"] == "vera@example.com"


async def test_of_two_uses_of_one_link_that_both_found_it_live_one_makes_the_account(
    ctx: FakeContext,
) -> None:
    mailer = FakeMailer()
    await request_registration(ctx, vera())
    token = await mailed_token(ctx, mailer, "vera@example.com")
    ((_, pending),) = ctx.store.tables.verifications.values()
    await verify_registration(ctx, token)
    # The second use read the link while it was live; its claim finds it used up.
    with pytest.raises(errors.TokenInvalid):
        await register(ctx, vera(), verification_id=pending.id)
    assert len(ctx.store.tables.users) == len(ctx.store.tables.organizations) == 1


async def test_a_link_that_expired_before_its_mail_went_out_is_not_mailed(
    ctx: FakeContext,
) -> None:
    mailer = FakeMailer()
    await request_registration(ctx, vera())
    ctx.clock.advance(hours=ctx.settings.registration.link_ttl_hours + 1)
    await worker.run_until_idle(ctx, mailer)
    assert mailer.sent == []  # a mail whose link cannot work is not sent
    assert all(m.sent_at is not None for m in ctx.store.tables.outbox.values())  # not retried


async def test_a_notice_for_an_owner_deprovisioned_while_mail_goes_out_is_not_sent(
    ctx: FakeContext,
) -> None:
    owner = await register(ctx, vera("owner@example.com"))
    await request_registration(ctx, vera())  # a link for a new address, mailed first
    await request_registration(ctx, vera("owner@example.com"))  # a notice, leased with it

    class DeprovisionsOnFirstSend(FakeMailer):
        async def send(self, recipient: str, subject: str, body: str) -> None:
            if not self.sent:  # while the pass is sending: an admin removes the owner
                await deprovision_user(ctx, owner["user"]["id"], caller=PLATFORM)
            await super().send(recipient, subject, body)

    mailer = DeprovisionsOnFirstSend()
    await worker.run_until_idle(ctx, mailer)
    assert [m.recipient for m in mailer.sent] == ["vera@example.com"]
    assert all(m.sent_at is not None for m in ctx.store.tables.outbox.values())  # not retried

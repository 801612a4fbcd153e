"""The worker finishes what requests left open, gives up cleanly, and delivers mail (G8)."""

from __future__ import annotations

import asyncio
import re
from uuid import UUID

import pytest

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.model import CredentialMode
from accord.services import credentials, worker
from accord.services.provisioning import NewUser, create_user
from accord.testing import FakeIdentityProvider, Fault
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import SmtpServer, make_everything_due


def user(org: UUID, email: str = "ada@example.com", **changes) -> NewUser:
    return NewUser(email=email, full_name="Ada Lovelace", organization_id=org, **changes)


async def test_the_worker_finishes_an_operation_the_idp_outage_left_open(
    accord_fake: Accord, fake_idp: FakeIdentityProvider, smtp: SmtpServer
) -> None:
    org = await new_org(accord_fake)
    fake_idp.script("create", Fault.UNAVAILABLE, times=2)
    with pytest.raises(errors.OperationPending):
        await create_user(accord_fake, user(org), caller=PLATFORM, idempotency_key="k")
    # Nothing is due yet: the backoff holds it back.
    assert (await worker.run_until_idle(accord_fake, smtp.mailer())).succeeded == 0
    await make_everything_due(accord_fake)
    first = await worker.run_until_idle(accord_fake, smtp.mailer())
    assert (first.succeeded, first.postponed) == (0, 1)  # the second scripted failure
    await make_everything_due(accord_fake)
    second = await worker.run_until_idle(accord_fake, smtp.mailer())
    assert second.succeeded == 1
    assert await scalar(accord_fake, "SELECT state FROM operations") == "succeeded"
    assert len(smtp.inbox.to("ada@example.com")) == 1
    # The client's retry with its key now gets the worker's result.
    replay = await create_user(accord_fake, user(org), caller=PLATFORM, idempotency_key="k")
    assert replay["user"]["status"] == "pending"
    await assert_guarantees(accord_fake)


async def test_an_operation_out_of_retries_is_compensated_and_failed(
    accord_fake: Accord, fake_idp: FakeIdentityProvider, smtp: SmtpServer
) -> None:
    org = await new_org(accord_fake)
    fake_idp.script("update", Fault.UNAVAILABLE, times=1000)  # created, its password never set
    with pytest.raises(errors.OperationPending):
        await create_user(
            accord_fake,
            user(org, credential=CredentialMode.TEMP_PASSWORD),
            caller=PLATFORM,
            idempotency_key="k",
        )
    assert len(fake_idp.users) == 1
    budget = accord_fake.settings.operation_max_attempts
    await scalar(accord_fake, f"UPDATE operations SET attempts = {budget} RETURNING 1")
    await make_everything_due(accord_fake)
    result = await worker.run_until_idle(accord_fake, smtp.mailer())
    assert result.failed == 1
    assert fake_idp.users == {}  # the IdP user it created is gone (G7)
    assert await scalar(accord_fake, "SELECT count(*) FROM users") == 0
    error = await scalar(accord_fake, "SELECT error->>'code' FROM operations")
    assert error == "retry_budget_exhausted"
    with pytest.raises(errors.RetryBudgetExhausted) as caught:
        await create_user(
            accord_fake,
            user(org, credential=CredentialMode.TEMP_PASSWORD),
            caller=PLATFORM,
            idempotency_key="k",
        )
    assert "fake IdP: 503" in caught.value.message  # the last error says why
    assert smtp.inbox.messages == []
    await assert_guarantees(accord_fake)


async def test_a_client_retry_racing_the_worker_has_its_effects_once(
    accord_fake: Accord, fake_idp: FakeIdentityProvider, smtp: SmtpServer
) -> None:
    org = await new_org(accord_fake)
    fake_idp.script("create", Fault.UNAVAILABLE)
    request = user(org, credential=CredentialMode.TEMP_PASSWORD)
    with pytest.raises(errors.OperationPending):
        await create_user(accord_fake, request, caller=PLATFORM, idempotency_key="k")
    await make_everything_due(accord_fake)
    client, _ = await asyncio.gather(
        create_user(accord_fake, request, caller=PLATFORM, idempotency_key="k"),
        worker.run_once(accord_fake, smtp.mailer()),
    )
    assert client["user"]["status"] == "pending"
    assert [c[0] for c in fake_idp.calls].count("create") == 2  # the failed one and one more
    assert len(fake_idp.users) == 1
    assert await scalar(accord_fake, "SELECT count(*) FROM memberships") == 1
    assert (
        await scalar(accord_fake, "SELECT count(*) FROM audit_events WHERE action = 'user.created'")
        == 1
    )
    await assert_guarantees(accord_fake)


async def test_mail_goes_only_to_committed_users_once_and_survives_an_outage(
    accord: Accord, smtp: SmtpServer
) -> None:
    org = await new_org(accord)
    invited = [f"user{i}@example.com" for i in range(3)]
    for email in invited:
        await create_user(accord, user(org, email), caller=PLATFORM)
    await create_user(
        accord,
        user(org, "temp@example.com", credential=CredentialMode.TEMP_PASSWORD),
        caller=PLATFORM,
    )
    with pytest.raises(errors.EmailAlreadyExists):
        await create_user(accord, user(org, invited[0]), caller=PLATFORM)

    smtp.stop()  # the mail server is down
    down = await worker.run_until_idle(accord, smtp.mailer())
    assert (down.mail.sent, down.mail.failed) == (0, 3)
    assert await scalar(accord, "SELECT count(*) FROM outbox WHERE last_error IS NOT NULL") == 3

    smtp.start()
    await make_everything_due(accord)
    up = await worker.run_until_idle(accord, smtp.mailer())
    assert up.mail.sent == 3
    await make_everything_due(accord)
    assert (await worker.run_until_idle(accord, smtp.mailer())).mail.sent == 0  # sent once
    assert sorted(m["To"] for m in smtp.inbox.messages) == invited

    message = smtp.inbox.to(invited[1])[0]
    body = message.get_content()
    assert "expires in 24 hours" in body
    token = re.search(r"token=([\w-]+)", body).group(1)
    done = await credentials.complete_password_setup(accord, token, "a password of mine")
    assert done["email"] == invited[1] and done["status"] == "active"
    await assert_guarantees(accord)


@pytest.mark.parametrize("leaving", ["deprovisioned", "suspended"])
async def test_no_mail_and_no_link_for_a_user_who_left_before_it_was_sent(
    accord: Accord, smtp: SmtpServer, leaving: str
) -> None:
    from accord.services.deprovisioning import deprovision_user
    from accord.services.suspension import suspend_user

    leave = {"deprovisioned": deprovision_user, "suspended": suspend_user}[leaving]
    org = await new_org(accord)
    created = await create_user(accord, user(org), caller=PLATFORM)
    await leave(accord, created["user"]["id"], caller=PLATFORM)
    await worker.run_until_idle(accord, smtp.mailer())
    assert smtp.inbox.messages == []  # the invitation is dropped, not kept for later
    assert await scalar(accord, "SELECT count(*) FROM one_time_tokens") == 0
    assert await scalar(accord, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0


async def test_housekeeping_expires_tokens_and_old_keys(accord: Accord, smtp: SmtpServer) -> None:
    org = await new_org(accord)
    created = await create_user(accord, user(org), caller=PLATFORM, idempotency_key="old")
    await credentials.issue_password_setup(accord, UUID(created["user"]["id"]))
    await scalar(
        accord, "UPDATE one_time_tokens SET expires_at = now() - interval '1 s' RETURNING 1"
    )
    await scalar(
        accord, "UPDATE operations SET updated_at = now() - interval '25 hours' RETURNING 1"
    )
    result = worker.Pass()
    await worker.housekeeping(accord, result)
    assert (result.expired_tokens, result.forgotten_keys, result.deleted_operations) == (1, 1, 1)
    assert await scalar(accord, "SELECT count(*) FROM operations") == 0

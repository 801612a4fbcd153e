"""A delivery pass sends its mail over one SMTP connection; a connection the server drops is
replaced once, and a message that still fails is that message's failure alone (G8)."""

from __future__ import annotations

from uuid import UUID

import aiosmtplib
import pytest

from accord.adapters.mail.smtp import SmtpMailer
from accord.bootstrap import Accord
from accord.domain.errors import MailUnavailable
from accord.services import worker
from accord.services.mail import deliver_outbox
from accord.services.provisioning import NewUser, create_user
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import SmtpServer, make_everything_due

INVITED = [f"user{i}@example.com" for i in range(4)]


async def invite(accord: Accord, org: UUID, emails: list[str] = INVITED) -> None:
    for email in emails:
        new = NewUser(email=email, full_name="Ada Lovelace", organization_id=org)
        await create_user(accord, new, caller=PLATFORM)


async def test_a_pass_sends_all_its_mail_over_one_connection(
    accord: Accord, smtp: SmtpServer
) -> None:
    await invite(accord, await new_org(accord))
    delivery = await deliver_outbox(accord, smtp.mailer())
    assert delivery.sent == len(INVITED)
    assert sorted(m["To"] for m in smtp.inbox.messages) == INVITED
    assert len(set(smtp.inbox.peers)) == 1  # one connection, four messages
    assert await scalar(accord, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0


async def test_a_pass_with_nothing_due_connects_to_nobody(accord: Accord, smtp: SmtpServer) -> None:
    smtp.stop()  # a connection attempt would fail the pass
    delivery = await deliver_outbox(accord, smtp.mailer())
    assert (delivery.sent, delivery.failed) == (0, 0)


async def test_a_dropped_connection_is_replaced_once_and_nothing_is_lost(
    accord: Accord, smtp: SmtpServer
) -> None:
    await invite(accord, await new_org(accord))
    smtp.inbox.hang_up_at = {3}  # the server hangs up on the third message, once
    delivery = await deliver_outbox(accord, smtp.mailer())
    assert (delivery.sent, delivery.failed) == (4, 0)
    assert sorted(m["To"] for m in smtp.inbox.messages) == INVITED  # each exactly once
    peers = smtp.inbox.peers
    assert peers[0] == peers[1] != peers[2] == peers[3]  # the rest went on the new connection


async def test_a_message_failing_on_a_new_connection_too_is_retried_alone(
    accord: Accord, smtp: SmtpServer
) -> None:
    await invite(accord, await new_org(accord))
    smtp.inbox.hang_up_at = {2, 3}  # the second message: on the reused connection, the new one
    delivery = await deliver_outbox(accord, smtp.mailer())
    assert (delivery.sent, delivery.failed) == (3, 1)
    received = [m["To"] for m in smtp.inbox.messages]
    failed = await scalar(accord, "SELECT recipient FROM outbox WHERE sent_at IS NULL")
    assert sorted([*received, failed]) == INVITED
    error = await scalar(accord, "SELECT last_error FROM outbox WHERE sent_at IS NULL")
    assert error.startswith("MailUnavailable")
    assert len(set(smtp.inbox.peers)) == 2  # the third and fourth on the connection after

    await make_everything_due(accord)  # its backoff over: sent now, and nothing twice
    again = await worker.run_until_idle(accord, smtp.mailer())
    assert (again.mail.sent, again.mail.failed) == (1, 0)
    assert sorted(m["To"] for m in smtp.inbox.messages) == INVITED
    await assert_guarantees(accord)


async def test_a_hang_up_on_the_first_message_of_a_connection_is_not_retried_at_once(
    accord: Accord, smtp: SmtpServer
) -> None:
    await invite(accord, await new_org(accord), INVITED[:2])
    smtp.inbox.hang_up_at = {1}  # a new connection failing is no dropped one: no second try
    delivery = await deliver_outbox(accord, smtp.mailer())
    assert (delivery.sent, delivery.failed) == (1, 1)
    assert smtp.inbox.rcpts == 2


async def test_a_server_that_cannot_be_reached_is_tried_once_per_pass(smtp: SmtpServer) -> None:
    class CountingMailer(SmtpMailer):
        clients = 0

        def client(self) -> aiosmtplib.SMTP:
            self.clients += 1
            return super().client()

    smtp.stop()  # nothing listens on its port now
    mailer = CountingMailer(smtp.mailer().settings)
    async with mailer.session() as session:
        for recipient in INVITED:
            with pytest.raises(MailUnavailable, match="SMTPConnectError"):
                await session.send(recipient, "Hello", "body")
    assert mailer.clients == 1  # the other three did not wait for a server that is not there

"""A mail's headers are exactly the ones accord writes: a line break in a recipient or a subject
(an organization's display name goes into the subject) adds none, and a non-ASCII name arrives
as it was written."""

from __future__ import annotations

import pytest

from accord.adapters.mail.smtp import build_message
from accord.bootstrap import Accord
from accord.domain.errors import InvalidInput
from accord.services import worker
from accord.services.invitations import Invite, invite
from accord.services.organizations import NewOrganization, create_organization
from tests.engine.conftest import PLATFORM, scalar
from tests.mailbox import SmtpServer

SENDER = "accord <no-reply@localhost>"


@pytest.mark.parametrize(
    ("recipient", "subject"),
    [
        ("ada@example.com\r\nBcc: eve@example.com", "Hello"),
        ("ada@example.com\nBcc: eve@example.com", "Hello"),
        ("ada@example.com", "Hello\r\nBcc: eve@example.com"),
        ("ada@example.com", "Hello\n folded on"),
        ("ada@example.com", "Hello\rBcc: eve@example.com"),
    ],
)
def test_a_line_break_in_a_header_refuses_the_message(recipient: str, subject: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        build_message(SENDER, recipient, subject, "body")


async def organization(accord: Accord, display_name: str) -> str:
    org = await create_organization(
        accord, NewOrganization(name="Acme", display_name=display_name), caller=PLATFORM
    )
    return org["id"]


async def test_a_display_name_with_a_line_break_adds_no_header(
    accord: Accord, smtp: SmtpServer
) -> None:
    org = await organization(accord, "Acme\r\nBcc: eve@example.com")
    shown = await scalar(accord, f"SELECT display_name FROM organizations WHERE id = '{org}'")
    assert shown == "Acme Bcc: eve@example.com"  # folded to one line when it was created
    await invite(accord, Invite(org, "ada@example.com"), caller=PLATFORM)
    done = await worker.run_once(accord, smtp.mailer(), housekeep=False)
    assert done.mail.sent == 1
    [message] = smtp.inbox.messages
    assert message["Subject"] == "You are invited to join Acme Bcc: eve@example.com"
    assert "Bcc" not in message
    assert smtp.inbox.rcpts == 1  # the envelope names ada alone


@pytest.mark.parametrize("display_name", ["\u200b", " \r\n ", "x" * 201])
async def test_a_display_name_is_checked_when_an_organization_is_created(
    accord: Accord, display_name: str
) -> None:
    with pytest.raises(InvalidInput, match="display name"):
        await organization(accord, display_name)


async def test_a_non_ascii_display_name_arrives_as_written(
    accord: Accord, smtp: SmtpServer
) -> None:
    name = "Zoë & Søn Ærø — 東京"
    org = await organization(accord, name)
    await invite(accord, Invite(org, "ada@example.com"), caller=PLATFORM)
    done = await worker.run_once(accord, smtp.mailer(), housekeep=False)
    assert done.mail.sent == 1
    [message] = smtp.inbox.messages
    assert message["Subject"] == f"You are invited to join {name}"
    assert (message["From"], message["To"]) == (SENDER, "ada@example.com")
    assert message.get_content_charset() == "utf-8"
    assert f"to join {name} on accord" in message.get_content()
    assert sorted(message.keys()) == sorted(
        ["Content-Type", "MIME-Version", "Content-Transfer-Encoding", "From", "To", "Subject"]
    )


def test_an_internationalized_address_is_written_in_utf8() -> None:
    message = build_message(SENDER, "zoë@exämple.com", "Grüße", "Hallo Zoë")
    flat = message.as_bytes(policy=message.policy.clone(utf8=True))
    assert "To: zoë@exämple.com".encode() in flat

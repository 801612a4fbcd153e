"""A set-password link belongs to the address it was mailed to. When an administrator changes a
user's e-mail (the old address may be a former employee's mailbox, or a typo someone else
owns), the links mailed or still queued to the old address stop working, and a person who
never set a password gets a fresh link at the new address."""

from __future__ import annotations

import re
from uuid import UUID, uuid4

import httpx

from accord.bootstrap import Accord
from accord.domain.model import CredentialMode
from accord.services.credentials import request_password_setup
from accord.services.mail import deliver_outbox
from accord.services.profile import ProfileChange, update_user
from accord.services.provisioning import NewUser, create_user
from accord.testing import FakeMailer
from tests.engine.conftest import PLATFORM, new_org
from tests.security import verifying_server
from tests.security.verifying_server import PASSWORD

settings, http = verifying_server.settings, verifying_server.http
LINK = re.compile(r"#token=([A-Za-z0-9_\-]+)")


async def mailed_links(accord: Accord, mailer: FakeMailer, address: str) -> list[str]:
    while (await deliver_outbox(accord, mailer, limit=50)).sent:
        pass
    return [t for m in mailer.sent if m.recipient == address for t in LINK.findall(m.body)]


async def set_password(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post(
        "/api/auth/password/setup", json={"token": token, "new_password": PASSWORD}
    )


async def test_an_address_change_withdraws_the_links_the_old_address_holds(
    http: httpx.AsyncClient, accord: Accord
) -> None:
    old, new = f"old-{uuid4().hex[:8]}@example.com", f"new-{uuid4().hex[:8]}@example.com"
    org = await new_org(accord, f"Org {old}")
    made = await create_user(
        accord, NewUser(old, "Pat", org, credential=CredentialMode.INVITE), caller=PLATFORM
    )
    user_id = UUID(made["user"]["id"])
    mailer = FakeMailer()
    [delivered] = await mailed_links(accord, mailer, old)  # the welcome reached the old address
    await request_password_setup(accord, old)  # and a second one waits, not yet sent

    await update_user(accord, user_id, ProfileChange(email=new), caller=PLATFORM)

    refused = await set_password(http, delivered)
    assert refused.status_code == 400 and refused.json()["code"] == "token_invalid"
    assert await mailed_links(accord, mailer, old) == [delivered]  # the queued one never went
    [fresh] = await mailed_links(accord, mailer, new)
    chosen = await set_password(http, fresh)
    assert chosen.status_code == 200, chosen.text
    signed = await http.post("/api/auth/login", json={"email": new, "password": PASSWORD})
    assert signed.status_code == 200, signed.text

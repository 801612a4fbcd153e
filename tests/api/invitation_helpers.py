"""What the invitation tests share: reading the accept link from the mail, and making time pass."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import text

from accord.bootstrap import Accord
from accord.services.mail import deliver_outbox
from accord.testing.context import FakeMailer
from tests.api.conftest import Tokens, bearer

PASSWORD = "a good long password for Ada"
LINK = re.compile(r"/invitations/accept#token=([A-Za-z0-9_\-]+)")


async def mailed_tokens(accord: Accord, email: str) -> list[str]:
    """Deliver the outbox; the tokens of the invitation links mailed to ``email`` now, in order."""
    mailer = FakeMailer()
    while (await deliver_outbox(accord, mailer, limit=50)).sent:
        pass
    return [m for s in mailer.sent if s.recipient == email for m in LINK.findall(s.body)]


async def invite(
    client: httpx.AsyncClient, creds: Tokens, email: str, org: UUID | None = None, **body: Any
) -> httpx.Response:
    org_id = org or creds.a
    return await client.post(
        f"/api/admin/organizations/{org_id}/invitations",
        json={"email": email, **body},
        headers=bearer(creds.platform),
    )


async def invited_token(
    client: httpx.AsyncClient, accord: Accord, creds: Tokens, email: str, **body: Any
) -> tuple[str, str]:
    """Invite ``email`` into A; the invitation's id and its mailed link's token."""
    created = await invite(client, creds, email, **body)
    assert created.status_code == 201, created.text
    tokens = await mailed_tokens(accord, email)
    assert len(tokens) == 1
    return created.json()["id"], tokens[0]


async def pass_expiry(accord: Accord, invitation_id: str) -> None:
    """Let the invitation's time run out (instead of waiting for it)."""
    async with accord.db.transaction() as conn:
        await conn.execute(
            text("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = :i"),
            {"i": invitation_id},
        )


async def accept(client: httpx.AsyncClient, token: str, **body: Any) -> httpx.Response:
    payload = {"token": token, "full_name": "Ada Lovelace", "password": PASSWORD, **body}
    return await client.post("/api/invitations/accept", json=payload)

"""Invitation links are secrets (G9): only the SHA-256 digest of a link's token is stored, a
resend kills the old link at once, and a used link cannot be used again: its replays answer
the same and change nothing (not the password, not the memberships)."""

from __future__ import annotations

import hashlib
from uuid import UUID, uuid4

import httpx
from sqlalchemy import text

from accord.bootstrap import Accord
from accord.services import organizations, tokens
from tests.engine.conftest import PLATFORM
from tests.mailbox import SmtpServer
from tests.security import verifying_server
from tests.security.verifying_server import (
    PASSWORD,
    at_once,
    deliver,
    link_token,
    mail_to,
    signs_in,
)

settings, http, smtp_module = (
    verifying_server.settings,
    verifying_server.http,
    verifying_server.smtp_module,
)


async def invited(
    http: httpx.AsyncClient, accord: Accord, smtp: SmtpServer
) -> tuple[str, str, UUID]:
    """A fresh address invited into a fresh organization: the address, the invitation's id and
    the organization's."""
    email = f"inv-{uuid4().hex[:10]}@example.com"
    org = await organizations.create_organization(
        accord, organizations.NewOrganization(name=f"Org {email}"), caller=PLATFORM
    )
    platform, _ = await tokens.create_token(accord, name="platform")
    made = await http.post(
        f"/api/admin/organizations/{org['id']}/invitations",
        json={"email": email},
        headers={"Authorization": f"Bearer {platform}"},
    )
    assert made.status_code == 201, made.text
    await deliver(accord, smtp)
    return email, made.json()["id"], UUID(org["id"])


async def rows_as_text(accord: Accord) -> str:
    """Everything accord keeps that could hold a link: invitations, outbox, audit, operations."""
    async with accord.db.transaction() as conn:
        parts = [
            str((await conn.execute(text(f"SELECT * FROM {table}"))).all())
            for table in ("invitations", "outbox", "audit_events", "operations")
        ]
    return "\n".join(parts)


async def test_only_the_digest_of_a_link_is_stored(
    http: httpx.AsyncClient, accord: Accord, smtp_module: SmtpServer
) -> None:
    email, invitation_id, _ = await invited(http, accord, smtp_module)
    token = link_token(mail_to(smtp_module, email)[-1])
    async with accord.db.transaction() as conn:
        digest = await conn.scalar(
            text("SELECT digest FROM invitations WHERE id = :i"), {"i": invitation_id}
        )
    assert digest == hashlib.sha256(token.encode()).hexdigest()
    assert (await http.get(f"/api/invitations/{token}")).status_code == 200
    accepted = await http.post(
        "/api/invitations/accept", json={"token": token, "full_name": "Ivy", "password": PASSWORD}
    )
    assert accepted.status_code == 200, accepted.text
    assert token not in await rows_as_text(accord)
    assert PASSWORD not in await rows_as_text(accord)


async def test_a_resend_kills_the_old_link(
    http: httpx.AsyncClient, accord: Accord, smtp_module: SmtpServer
) -> None:
    email, invitation_id, _ = await invited(http, accord, smtp_module)
    old = link_token(mail_to(smtp_module, email)[-1])
    platform, _ = await tokens.create_token(accord, name="platform")
    resent = await http.post(
        f"/api/admin/invitations/{invitation_id}/resend",
        headers={"Authorization": f"Bearer {platform}"},
    )
    assert resent.status_code == 200, resent.text
    gone = await http.post(
        "/api/invitations/accept", json={"token": old, "full_name": "Ivy", "password": PASSWORD}
    )
    assert gone.status_code == 404 and gone.json()["code"] == "invitation_not_found"
    await deliver(accord, smtp_module)
    new = link_token(mail_to(smtp_module, email)[-1])
    assert new != old
    assert (await http.get(f"/api/invitations/{old}")).status_code == 404
    used = await http.post(
        "/api/invitations/accept", json={"token": new, "full_name": "Ivy", "password": PASSWORD}
    )
    assert used.status_code == 200, used.text


async def test_a_used_link_changes_nothing_when_used_again(
    http: httpx.AsyncClient, accord: Accord, smtp_module: SmtpServer
) -> None:
    email, _, org_id = await invited(http, accord, smtp_module)
    token = link_token(mail_to(smtp_module, email)[-1])

    async def use(i: int) -> httpx.Response:
        body = {"token": token, "full_name": f"Ivy {i}", "password": f"{PASSWORD} number {i:02d}"}
        return await http.post("/api/invitations/accept", json=body)

    answers = await at_once(20, use)
    assert {a.status_code for a in answers} <= {200, 409}, [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} <= {"operation_in_progress"}
    later = [await use(i) for i in range(20)]
    assert all(a.status_code == 200 for a in later)
    assert len({a.text for a in later} | {a.text for a in answers if a.status_code == 200}) == 1
    working = [i for i in range(20) if await signs_in(http, email, f"{PASSWORD} number {i:02d}")]
    assert len(working) == 1, working  # exactly one use set the password
    async with accord.db.transaction() as conn:
        members = await conn.scalar(
            text("SELECT count(*) FROM memberships WHERE organization_id = :o"), {"o": org_id}
        )
    assert members == 1

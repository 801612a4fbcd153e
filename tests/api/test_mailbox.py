"""The embedded mailbox over HTTP: without SMTP settings, mail is kept and readable by a platform
token (with its links), never by an organization token."""

from __future__ import annotations

import httpx

from accord.bootstrap import Accord, build_mailer
from accord.services import worker
from tests.api.conftest import Tokens, bearer, problem


async def test_without_smtp_an_invitation_lands_in_the_mailbox_with_its_link(
    client: httpx.AsyncClient, creds: Tokens, accord: Accord
) -> None:
    assert accord.settings.smtp.host is None
    created = await client.post(
        f"/api/admin/organizations/{creds.a}/users",
        json={"email": creds.email("invited"), "full_name": "Invited"},
        headers=bearer(creds.platform),
    )
    assert created.status_code == 201
    mailer = build_mailer(accord.settings, accord.store)
    assert type(mailer).__name__ == "MailboxMailer"
    done = await worker.run_until_idle(accord, mailer)
    assert done.mail.sent >= 1

    listed = await client.get(
        "/api/admin/mailbox", params={"to": creds.email("invited")}, headers=bearer(creds.platform)
    )
    assert listed.status_code == 200, listed.text
    [summary] = listed.json()["items"]
    assert summary["to"] == creds.email("invited")
    [link] = summary["links"]
    assert link.startswith(accord.settings.public_url) and "body" not in summary
    one = await client.get(f"/api/admin/mailbox/{summary['id']}", headers=bearer(creds.platform))
    assert one.status_code == 200
    assert link in one.json()["body"] and one.json()["links"] == [link]


async def test_only_a_platform_token_reads_the_mailbox(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    problem(await client.get("/api/admin/mailbox", headers=bearer(creds.org_a)), 403, "forbidden")
    problem(await client.get("/api/admin/mailbox/1", headers=bearer(creds.org_a)), 403, "forbidden")
    problem(await client.get("/api/admin/mailbox"), 401, "unauthenticated")
    problem(
        await client.get("/api/admin/mailbox/999999999", headers=bearer(creds.platform)),
        404,
        "mail_not_found",
    )
    problem(
        await client.get(
            "/api/admin/mailbox", params={"cursor": "x"}, headers=bearer(creds.platform)
        ),
        422,
        "invalid_input",
    )

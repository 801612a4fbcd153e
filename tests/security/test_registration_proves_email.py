"""Finding "Public registration proves the e-mail" (issue 11): a public registration used to
grant an active account for any address at once, and to answer 409 ``email_exists`` for a taken
one (an enumeration oracle). With ``registration.verify_email`` (the default) both answers are
the same 202, and the account exists only once the link mailed to the address is used."""

from __future__ import annotations

import hashlib
from uuid import uuid4

import httpx

from accord.bootstrap import Accord
from accord.services.registration import Registration, register
from tests.engine.conftest import scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import SmtpServer
from tests.security import verifying_server
from tests.security.verifying_server import PASSWORD, deliver, link_token, mail_to, signs_in

# This module's own accord: a real API server on the local IdP, the default settings.
settings, http, smtp_module = (
    verifying_server.settings,
    verifying_server.http,
    verifying_server.smtp_module,
)


def signup(email: str, password: str = PASSWORD) -> dict[str, str]:
    return {"email": email, "password": password, "full_name": "Vera", "organization_name": email}


async def test_registration_answers_alike_and_the_link_makes_the_account(
    http: httpx.AsyncClient, accord: Accord, smtp_module: SmtpServer
) -> None:
    tag = uuid4().hex[:10]
    new, taken = f"new-{tag}@example.com", f"taken-{tag}@example.com"
    await register(accord, Registration(taken, "the owner's own password", "Owner"))

    answers = [await http.post("/api/auth/register", json=signup(e)) for e in (new, taken)]
    assert [a.status_code for a in answers] == [202, 202], answers[1].text
    assert answers[0].json() == answers[1].json() == {"status": "verification_sent"}
    # Nothing exists for the new address until its link is used.
    assert await scalar(accord, "SELECT count(*) FROM users WHERE email = :e", e=new) == 0
    assert not await signs_in(http, new, PASSWORD)

    await deliver(accord, smtp_module)
    (verification,) = mail_to(smtp_module, new)
    token = link_token(verification)
    stored = await scalar(accord, "SELECT digest FROM email_verifications WHERE email = :e", e=new)
    assert stored == hashlib.sha256(token.encode()).hexdigest()  # its digest, and only that
    (notice,) = mail_to(smtp_module, taken)
    assert "already has one" in notice and "/set-password" in notice and "#token=" not in notice

    made = await http.post("/api/auth/register/verify", json={"token": token})
    assert made.status_code == 201, made.text
    assert made.json()["user"]["status"] == "active"
    assert made.json()["organization"]["kind"] == "personal"
    assert PASSWORD not in made.text
    again = await http.post("/api/auth/register/verify", json={"token": token})
    assert again.status_code == 400 and again.json()["code"] == "token_invalid"
    assert await signs_in(http, new, PASSWORD)
    # The taken address's owner lost nothing: the stranger's password does not sign in.
    assert await signs_in(http, taken, "the owner's own password")
    assert not await signs_in(http, taken, PASSWORD)
    owned = await scalar(
        accord,
        "SELECT count(*) FROM organizations o JOIN users u ON u.id = o.owner_user_id "
        "WHERE u.email = :e",
        e=new,
    )
    assert owned == 1  # G4
    await assert_guarantees(accord)


async def test_an_expired_link_makes_nothing(
    http: httpx.AsyncClient, accord: Accord, smtp_module: SmtpServer
) -> None:
    email = f"late-{uuid4().hex[:10]}@example.com"
    assert (await http.post("/api/auth/register", json=signup(email))).status_code == 202
    await deliver(accord, smtp_module)
    (verification,) = mail_to(smtp_module, email)
    await scalar(
        accord,
        "UPDATE email_verifications SET expires_at = now() - interval '1 second' "
        "WHERE email = :e RETURNING 1",
        e=email,
    )
    late = await http.post("/api/auth/register/verify", json={"token": link_token(verification)})
    assert late.status_code == 400 and late.json()["code"] == "token_invalid"
    assert await scalar(accord, "SELECT count(*) FROM users WHERE email = :e", e=email) == 0

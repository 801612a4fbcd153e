"""Finding "single-use tokens are not single-use" (issue 11): 8 concurrent uses of one
set-password link answered one 200 and seven 400s, and the password that worked belonged to one
of the 400s; 6 concurrent swaps of one temporary password all answered 200. Now each token is
consumed atomically before its effect: of 20 concurrent uses exactly one succeeds, it is that
caller's password that works, and a chosen password revokes the user's other links."""

from __future__ import annotations

from uuid import UUID, uuid4

import httpx

from accord.bootstrap import Accord
from accord.domain.model import CredentialMode
from accord.services import credentials
from accord.services.provisioning import NewUser, create_user
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
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

# This module's own accord: a real API server on the local IdP, the default settings.
settings, http, smtp_module = (
    verifying_server.settings,
    verifying_server.http,
    verifying_server.smtp_module,
)

CALLERS = 20


def chosen(i: int) -> str:
    return f"caller {i:02d}'s own password"


async def person(accord: Accord, credential: CredentialMode) -> tuple[str, dict]:
    """A user created by an admin, and the creation's result."""
    email = f"p-{uuid4().hex[:10]}@example.com"
    org = await new_org(accord, f"Org {email}")
    made = await create_user(
        accord, NewUser(email, "Pat", org, credential=credential), caller=PLATFORM
    )
    return email, made


async def only_winner_signs_in(
    http: httpx.AsyncClient, email: str, answers: list[httpx.Response], ok: int
) -> None:
    """Exactly one answer is ``ok``; its caller's password signs in, nobody else's does."""
    statuses = [a.status_code for a in answers]
    assert statuses.count(ok) == 1, statuses
    winner = statuses.index(ok)
    assert await signs_in(http, email, chosen(winner))
    assert not any([await signs_in(http, email, chosen(i)) for i in range(CALLERS) if i != winner])


async def test_a_set_password_link_works_for_exactly_one_of_twenty(
    http: httpx.AsyncClient, accord: Accord
) -> None:
    email, made = await person(accord, CredentialMode.INVITE)
    user_id = UUID(made["user"]["id"])
    token, _ = await credentials.issue_password_setup(accord, user_id)
    other, _ = await credentials.issue_password_setup(accord, user_id)  # a second, older mail

    answers = await at_once(
        CALLERS,
        lambda i: http.post(
            "/api/auth/password/setup", json={"token": token, "new_password": chosen(i)}
        ),
    )
    assert {a.json()["code"] for a in answers if a.status_code != 200} == {"token_invalid"}
    await only_winner_signs_in(http, email, answers, 200)
    revoked = await http.post(
        "/api/auth/password/setup", json={"token": other, "new_password": PASSWORD}
    )
    assert revoked.status_code == 400 and revoked.json()["code"] == "token_invalid"
    await assert_guarantees(accord)


async def test_a_temporary_password_is_swapped_by_exactly_one_of_twenty(
    http: httpx.AsyncClient, accord: Accord
) -> None:
    email, made = await person(accord, CredentialMode.TEMP_PASSWORD)
    temporary = made["temporary_password"]
    link, _ = await credentials.issue_password_setup(accord, UUID(made["user"]["id"]))

    answers = await at_once(
        CALLERS,
        lambda i: http.post(
            "/api/auth/password/replace-temporary",
            json={"email": email, "temporary_password": temporary, "new_password": chosen(i)},
        ),
    )
    assert {a.json()["code"] for a in answers if a.status_code != 200} == {"invalid_credentials"}
    await only_winner_signs_in(http, email, answers, 200)
    assert not await signs_in(http, email, temporary)
    revoked = await http.post(
        "/api/auth/password/setup", json={"token": link, "new_password": PASSWORD}
    )
    assert revoked.status_code == 400 and revoked.json()["code"] == "token_invalid"
    await assert_guarantees(accord)


async def test_a_verification_link_makes_one_account_for_twenty_uses(
    http: httpx.AsyncClient, accord: Accord, smtp_module: SmtpServer
) -> None:
    email = f"v-{uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": PASSWORD, "full_name": "Vic"}
    assert (await http.post("/api/auth/register", json=body)).status_code == 202
    await deliver(accord, smtp_module)
    (mail,) = mail_to(smtp_module, email)
    token = link_token(mail)

    answers = await at_once(
        CALLERS, lambda i: http.post("/api/auth/register/verify", json={"token": token})
    )
    statuses = [a.status_code for a in answers]
    assert statuses.count(201) == 1, statuses
    assert {a.json()["code"] for a in answers if a.status_code != 201} == {"token_invalid"}
    assert await signs_in(http, email, PASSWORD)
    assert await scalar(accord, "SELECT count(*) FROM users WHERE email = :e", e=email) == 1
    organizations = await scalar(
        accord,
        "SELECT count(*) FROM organizations o JOIN users u ON u.id = o.owner_user_id "
        "WHERE u.email = :e",
        e=email,
    )
    assert organizations == 1  # G4, however many uses
    await assert_guarantees(accord)

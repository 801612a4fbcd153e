"""PATCH /api/admin/users/{id}: e-mail address, name and flag over real HTTP, every error code
and the tenancy rule (G10)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx
from sqlalchemy import text

from accord.bootstrap import Accord
from accord.testing import FakeIdentityProvider
from tests.api.conftest import Tokens, bearer, problem


async def make_user(client: httpx.AsyncClient, creds: Tokens, name: str, org: Any = None) -> dict:
    body = {"email": creds.email(name), "full_name": "Ada Lovelace"}
    created = await client.post(
        "/api/admin/users",
        json={**body, "organization_id": str(org or creds.a)},
        headers=bearer(creds.platform),
    )
    assert created.status_code == 201, created.text
    return created.json()["user"]


async def patch(
    client: httpx.AsyncClient, token: str, user_id: str, body: dict, **headers: str
) -> httpx.Response:
    return await client.patch(
        f"/api/admin/users/{user_id}", json=body, headers=bearer(token, **headers)
    )


async def test_an_email_and_name_change_answers_the_changed_user(
    client: httpx.AsyncClient, creds: Tokens, fake: FakeIdentityProvider
) -> None:
    ada = await make_user(client, creds, "ada")
    new = creds.email("ada.king")
    changed = await patch(
        client, creds.org_a, ada["id"], {"email": new.upper(), "full_name": " Ada  King "}
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["operation_id"] is not None
    assert (body["user"]["email"], body["user"]["full_name"]) == (new, "Ada King")
    remote = await fake.find_by_email(new)
    assert remote is not None and remote.full_name == "Ada King"
    assert await fake.find_by_email(creds.email("ada")) is None
    read = await client.get(f"/api/admin/users/{ada['id']}", headers=bearer(creds.platform))
    assert read.json()["email"] == new


async def test_the_same_values_again_are_a_no_op(client: httpx.AsyncClient, creds: Tokens) -> None:
    ada = await make_user(client, creds, "ada")
    same = await patch(
        client, creds.platform, ada["id"], {"email": ada["email"], "full_name": None}
    )
    assert same.status_code == 200, same.text
    assert same.json() == {"operation_id": None, "user": ada}


async def test_the_platform_flag_needs_a_platform_token(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    ada = await make_user(client, creds, "ada")
    refused = await patch(client, creds.org_a, ada["id"], {"is_platform_admin": True})
    problem(refused, 403, "forbidden")
    made = await patch(client, creds.platform, ada["id"], {"is_platform_admin": True})
    assert made.status_code == 200, made.text
    assert made.json()["user"]["is_platform_admin"] is True
    assert made.json()["operation_id"] is None  # the database's alone: no IdP call


async def test_an_address_another_user_has_is_email_exists(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    ada, bob = await make_user(client, creds, "ada"), await make_user(client, creds, "bob")
    taken = await patch(client, creds.platform, ada["id"], {"email": bob["email"]})
    body = problem(taken, 409, "email_exists")
    assert bob["email"] in body["detail"]


async def test_an_account_of_another_system_is_identity_exists(
    client: httpx.AsyncClient, creds: Tokens, fake: FakeIdentityProvider
) -> None:
    ada = await make_user(client, creds, "ada")
    await fake.create_direct(creds.email("foreign"), "Someone Else")
    refused = await patch(client, creds.platform, ada["id"], {"email": creds.email("foreign")})
    problem(refused, 409, "identity_exists")
    read = await client.get(f"/api/admin/users/{ada['id']}", headers=bearer(creds.platform))
    assert read.json()["email"] == ada["email"]  # the old address, in both systems
    assert (await fake.find_by_email(ada["email"])) is not None


async def test_another_tenants_user_is_not_found_like_a_missing_one(
    client: httpx.AsyncClient, creds: Tokens, accord: Accord
) -> None:
    ada = await make_user(client, creds, "ada")
    both = await make_user(client, creds, "both")
    shared = await client.put(  # a member of B too
        f"/api/admin/organizations/{creds.b}/members/{both['id']}",
        json={"role": "org_user", "permissions": []},
        headers=bearer(creds.platform),
    )
    assert shared.status_code == 201, shared.text
    missing = await patch(client, creds.org_b, str(uuid4()), {"full_name": "X"})
    other = await patch(client, creds.org_b, ada["id"], {"full_name": "X"})
    partly = await patch(client, creds.org_a, both["id"], {"full_name": "X"})
    bodies = [problem(r, 404, "user_not_found") for r in (missing, other, partly)]
    assert {b["title"] for b in bodies} == {bodies[0]["title"]}
    read = await client.get(f"/api/admin/users/{ada['id']}", headers=bearer(creds.platform))
    assert read.json()["full_name"] == "Ada Lovelace"  # nothing changed


async def test_bad_input_answers_its_code(client: httpx.AsyncClient, creds: Tokens) -> None:
    ada = await make_user(client, creds, "ada")
    problem(await patch(client, creds.platform, ada["id"], {"nickname": "x"}), 422, "invalid_input")
    problem(
        await patch(client, creds.platform, ada["id"], {"full_name": "  "}), 422, "invalid_input"
    )
    problem(
        await patch(client, creds.platform, ada["id"], {"email": "no-at"}), 422, "email_invalid"
    )
    problem(
        await patch(client, creds.platform, "not-an-id", {"full_name": "X"}), 422, "invalid_input"
    )
    unauthenticated = await client.patch(f"/api/admin/users/{ada['id']}", json={"full_name": "X"})
    problem(unauthenticated, 401, "unauthenticated")


async def test_an_unlinked_user_is_user_not_linked(
    client: httpx.AsyncClient, creds: Tokens, accord: Accord
) -> None:
    ada = await make_user(client, creds, "ada")
    async with accord.db.transaction() as conn:
        await conn.execute(text("DELETE FROM idp_links WHERE user_id = :u"), {"u": ada["id"]})
    refused = await patch(client, creds.platform, ada["id"], {"email": creds.email("new")})
    problem(refused, 409, "user_not_linked")


async def test_an_outage_answers_202_and_a_retry_with_the_key_finishes(
    client: httpx.AsyncClient, creds: Tokens, fake: FakeIdentityProvider
) -> None:
    ada = await make_user(client, creds, "ada")
    new = creds.email("new")
    fake.script("update", "unavailable")
    waiting = await patch(
        client, creds.platform, ada["id"], {"email": new}, **{"Idempotency-Key": "p1"}
    )
    assert waiting.status_code == 202, waiting.text
    assert waiting.headers["location"].startswith("/api/operations/")
    reused = await patch(
        client,
        creds.platform,
        ada["id"],
        {"email": creds.email("other")},
        **{"Idempotency-Key": "p1"},
    )
    problem(reused, 422, "idempotency_key_reused")
    done = await patch(
        client, creds.platform, ada["id"], {"email": new}, **{"Idempotency-Key": "p1"}
    )
    assert done.status_code == 200, done.text
    assert done.json()["user"]["email"] == new
    again = await patch(
        client, creds.platform, ada["id"], {"email": new}, **{"Idempotency-Key": "p1"}
    )
    assert again.json() == done.json()


# -- self-service, built-in identity provider ----------------------------------------------------

PASSWORD = "a good long password"


async def signed_in(local_client: httpx.AsyncClient, email: str) -> tuple[str, str]:
    """Register ``email`` (active at once) and sign in; the user id and the login token."""
    registered = await local_client.post(
        "/api/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": "Self Service"},
    )
    assert registered.status_code == 201, registered.text
    login = await local_client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return registered.json()["user"]["id"], login.json()["access_token"]


async def mailed_tokens(accord: Accord) -> dict[str, str]:
    """The tokens of the e-mail change links mailed now, by recipient."""
    import re

    from accord.services.mail import deliver_outbox
    from accord.testing import FakeMailer

    mailer = FakeMailer()
    await deliver_outbox(accord, mailer, limit=500)
    found = {m.recipient: re.search(r"/confirm-email#token=(\S+)", m.body) for m in mailer.sent}
    return {to: match.group(1) for to, match in found.items() if match}


async def test_a_signed_in_person_changes_their_address_with_a_link_used_once(
    local_client: httpx.AsyncClient, creds: Tokens, accord: Accord
) -> None:
    old, new = creds.email("self"), creds.email("self.new")
    user_id, login = await signed_in(local_client, old)
    asked = await local_client.post(
        "/api/auth/email-change", json={"new_email": new}, headers=bearer(login)
    )
    assert asked.status_code == 202, asked.text
    read = await local_client.get(f"/api/admin/users/{user_id}", headers=bearer(creds.platform))
    assert read.json()["email"] == old  # nothing changes before the link is used
    token = (await mailed_tokens(accord))[new]
    not_a_password_link = await local_client.post(
        "/api/auth/password/setup", json={"token": token, "new_password": PASSWORD + "!"}
    )
    problem(not_a_password_link, 400, "token_invalid")
    done = await local_client.post("/api/auth/email-change/confirm", json={"token": token})
    assert done.status_code == 200, done.text
    assert done.json()["user"]["email"] == new
    again = await local_client.post("/api/auth/email-change/confirm", json={"token": token})
    problem(again, 400, "token_invalid")
    signed = await local_client.post("/api/auth/login", json={"email": new, "password": PASSWORD})
    assert signed.status_code == 200, signed.text
    gone = await local_client.post("/api/auth/login", json={"email": old, "password": PASSWORD})
    problem(gone, 401, "invalid_credentials")


async def test_a_link_refuses_when_expired_or_when_the_address_was_taken_meanwhile(
    local_client: httpx.AsyncClient, creds: Tokens, accord: Accord
) -> None:
    _, login = await signed_in(local_client, creds.email("self"))
    for new in (creds.email("late"), creds.email("taken")):
        asked = await local_client.post(
            "/api/auth/email-change", json={"new_email": new}, headers=bearer(login)
        )
        assert asked.status_code == 202, asked.text
    links = await mailed_tokens(accord)
    late, taken = links[creds.email("late")], links[creds.email("taken")]
    async with accord.db.transaction() as conn:
        await conn.execute(
            text(
                "UPDATE one_time_tokens SET expires_at = now() - interval '1 minute' "
                "WHERE digest = :d"
            ),
            {"d": __import__("hashlib").sha256(late.encode()).hexdigest()},
        )
    expired = await local_client.post("/api/auth/email-change/confirm", json={"token": late})
    problem(expired, 400, "token_invalid")
    await signed_in(local_client, creds.email("taken"))  # someone registers the address first
    refused = await local_client.post("/api/auth/email-change/confirm", json={"token": taken})
    problem(refused, 409, "email_exists")


async def test_asking_without_signing_in_is_unauthenticated(
    local_client: httpx.AsyncClient, creds: Tokens
) -> None:
    body = {"new_email": creds.email("x")}
    problem(await local_client.post("/api/auth/email-change", json=body), 401, "unauthenticated")
    forged = bearer("a.b.c")
    problem(
        await local_client.post("/api/auth/email-change", json=body, headers=forged),
        401,
        "unauthenticated",
    )
    problem(
        await local_client.post("/api/auth/email-change/confirm", json={"token": "nope"}),
        400,
        "token_invalid",
    )

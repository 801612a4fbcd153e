"""Invitations through real HTTP: every endpoint and error code, tenancy, and races."""

from __future__ import annotations

import asyncio
import json
import logging
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import text

from accord.bootstrap import Accord
from accord.services import worker
from accord.testing import FakeIdentityProvider
from tests.api.conftest import Tokens, bearer, new_org, problem
from tests.api.invitation_helpers import (
    PASSWORD,
    accept,
    invite,
    invited_token,
    mailed_tokens,
    pass_expiry,
)


async def test_an_invitation_holds_a_seat_and_is_not_made_twice(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    email = creds.email("inv")
    created = await invite(
        client, creds, f"  {email.upper()} ", role="org_admin", permissions=["b", "a"]
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["email"] == email and body["status"] == "pending"
    assert body["role"] == "org_admin" and body["permissions"] == ["a", "b"]
    assert body["organization_id"] == str(creds.a) and body["expires_at"]
    again = await invite(client, creds, email)
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    org = await client.get(f"/api/admin/organizations/{creds.a}", headers=bearer(creds.platform))
    assert org.status_code == 200


async def test_refusals_of_an_invitation(client: httpx.AsyncClient, creds: Tokens) -> None:
    member = await client.post(
        f"/api/admin/organizations/{creds.a}/users",
        json={"email": creds.email("member"), "full_name": "Member"},
        headers=bearer(creds.platform),
    )
    assert member.status_code == 201, member.text
    problem(await invite(client, creds, creds.email("member")), 409, "already_member")
    problem(await invite(client, creds, "not an address"), 422, "email_invalid")
    problem(await invite(client, creds, creds.email(), org=uuid4()), 404, "organization_not_found")
    problem(await invite(client, creds, creds.email(), expires_in_hours=0), 422, "invalid_input")
    problem(await invite(client, creds, creds.email(), role="owner"), 422, "invalid_input")
    anonymous = await client.post(
        f"/api/admin/organizations/{creds.a}/invitations", json={"email": creds.email()}
    )
    problem(anonymous, 401, "unauthenticated")


async def test_a_full_organization_refuses_invitations_until_one_is_revoked(
    client: httpx.AsyncClient, accord: Accord, creds: Tokens
) -> None:
    small = await new_org(accord, f"Small {creds.tag}", max_users=2)
    first = await invite(client, creds, creds.email("one"), org=small)
    second = await invite(client, creds, creds.email("two"), org=small)
    assert first.status_code == second.status_code == 201
    problem(await invite(client, creds, creds.email("three"), org=small), 409, "organization_full")
    creating = await client.post(
        f"/api/admin/organizations/{small}/users",
        json={"email": creds.email("four"), "full_name": "Four"},
        headers=bearer(creds.platform),
    )
    problem(creating, 409, "organization_full")  # members and invitations share one count
    revoked = await client.delete(
        f"/api/admin/invitations/{first.json()['id']}", headers=bearer(creds.platform)
    )
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    again = await client.delete(
        f"/api/admin/invitations/{first.json()['id']}", headers=bearer(creds.platform)
    )
    assert again.status_code == 200 and again.json()["status"] == "revoked"
    third = await invite(client, creds, creds.email("three"), org=small)
    assert third.status_code == 201, third.text


async def test_invitations_are_listed_by_status_a_page_at_a_time(
    client: httpx.AsyncClient, accord: Accord, creds: Tokens
) -> None:
    ids = [(await invite(client, creds, creds.email(f"p{i}"))).json()["id"] for i in range(3)]
    await client.delete(f"/api/admin/invitations/{ids[0]}", headers=bearer(creds.platform))
    await pass_expiry(accord, ids[1])
    url = f"/api/admin/organizations/{creds.a}/invitations"
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(url, params=params, headers=bearer(creds.platform))).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(i["id"] for i in seen) == sorted(ids)
    by_status = {}
    for status in ("pending", "revoked", "expired", "accepted"):
        found = await client.get(url, params={"status": status}, headers=bearer(creds.platform))
        assert found.status_code == 200
        by_status[status] = [i["id"] for i in found.json()["items"]]
    assert by_status == {
        "pending": [ids[2]],
        "revoked": [ids[0]],
        "expired": [ids[1]],
        "accepted": [],
    }
    bad = await client.get(url, params={"status": "lost"}, headers=bearer(creds.platform))
    problem(bad, 422, "invalid_input")
    misspelt = await client.get(url, params={"stauts": "pending"}, headers=bearer(creds.platform))
    assert "stauts" in problem(misspelt, 422, "invalid_input")["detail"]


async def test_the_link_shows_the_invitation_and_nothing_for_a_wrong_token(
    client: httpx.AsyncClient, accord: Accord, creds: Tokens
) -> None:
    email = creds.email("look")
    _, token = await invited_token(client, accord, creds, email)
    shown = await client.get(f"/api/invitations/{token}")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["email"] == email and body["organization"]["id"] == str(creds.a)
    assert body["organization"]["name"].startswith("Org A") and body["inviter"]
    assert body["status"] == "pending"
    problem(await client.get("/api/invitations/not-a-token"), 404, "invitation_not_found")
    problem(await client.get(f"/api/invitations/{'x' * 300}"), 404, "invitation_not_found")


async def test_a_new_person_accepts_once_and_signs_in(
    local_client: httpx.AsyncClient, accord: Accord, creds: Tokens
) -> None:
    email = creds.email("new")
    invitation_id, token = await invited_token(
        local_client, accord, creds, email, role="org_admin", permissions=["billing"]
    )
    weak = await accept(local_client, token, password="short")
    problem(weak, 400, "password_too_weak")
    accepted = await accept(local_client, token)
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["new_user"] is True and body["invitation"]["status"] == "accepted"
    assert body["invitation"]["id"] == invitation_id
    assert body["user"]["email"] == email and body["user"]["status"] == "active"
    assert body["user"]["organizations"] == [
        {"organization_id": str(creds.a), "role": "org_admin", "permissions": ["billing"]}
    ]
    login = await local_client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    twice = await accept(local_client, token, password="another long password entirely")
    assert twice.status_code == 200 and twice.json() == body
    old = await local_client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert old.status_code == 200, "a second use changed nothing"
    revoking = await local_client.delete(
        f"/api/admin/invitations/{invitation_id}", headers=bearer(creds.platform)
    )
    problem(revoking, 409, "already_member")


async def test_an_existing_user_joins_without_a_password(
    local_client: httpx.AsyncClient, accord: Accord, creds: Tokens
) -> None:
    email = creds.email("known")
    made = await local_client.post(
        f"/api/admin/organizations/{creds.b}/users",
        json={"email": email, "full_name": "Known Person"},
        headers=bearer(creds.platform),
    )
    assert made.status_code == 201, made.text
    await mailed_tokens(accord, email)  # the set-password mail of the new user
    _, token = await invited_token(local_client, accord, creds, email)
    joined = await local_client.post(
        "/api/invitations/accept", json={"token": token, "full_name": "Ignored"}
    )
    assert joined.status_code == 200, joined.text
    body = joined.json()
    assert body["new_user"] is False and body["user"]["id"] == made.json()["user"]["id"]
    assert body["user"]["full_name"] == "Known Person"
    assert {m["organization_id"] for m in body["user"]["organizations"]} == {
        str(creds.a),
        str(creds.b),
    }
    again = await local_client.post(
        "/api/invitations/accept", json={"token": token, "full_name": "Other"}
    )
    assert again.status_code == 200 and again.json() == body


async def test_revoked_and_expired_invitations_are_gone(
    client: httpx.AsyncClient, accord: Accord, creds: Tokens
) -> None:
    revoked_id, revoked_token = await invited_token(client, accord, creds, creds.email("rev"))
    await client.delete(f"/api/admin/invitations/{revoked_id}", headers=bearer(creds.platform))
    problem(await accept(client, revoked_token), 410, "invitation_revoked")
    problem(await client.get(f"/api/invitations/{revoked_token}"), 410, "invitation_revoked")
    resend = await client.post(
        f"/api/admin/invitations/{revoked_id}/resend", headers=bearer(creds.platform)
    )
    problem(resend, 410, "invitation_revoked")
    expired_id, expired_token = await invited_token(client, accord, creds, creds.email("exp"))
    await pass_expiry(accord, expired_id)
    problem(await accept(client, expired_token), 410, "invitation_expired")
    await worker.housekeeping(accord, worker.Pass())
    listed = await client.get(
        f"/api/admin/organizations/{creds.a}/invitations",
        params={"status": "expired"},
        headers=bearer(creds.platform),
    )
    assert [i["id"] for i in listed.json()["items"]] == [expired_id]
    async with accord.db.transaction() as conn:
        status = await conn.scalar(
            text("SELECT status FROM invitations WHERE id = :i"), {"i": expired_id}
        )
    assert status == "expired"
    again = await invite(client, creds, creds.email("exp"))
    assert again.status_code == 201 and again.json()["id"] != expired_id


async def test_resend_mails_a_new_link_and_the_old_one_stops_working(
    client: httpx.AsyncClient, accord: Accord, creds: Tokens
) -> None:
    email = creds.email("again")
    invitation_id, old = await invited_token(client, accord, creds, email)
    resent = await client.post(
        f"/api/admin/invitations/{invitation_id}/resend", headers=bearer(creds.platform)
    )
    assert resent.status_code == 200 and resent.json()["status"] == "pending"
    problem(await client.get(f"/api/invitations/{old}"), 404, "invitation_not_found")
    [new] = await mailed_tokens(accord, email)
    assert new != old
    assert (await client.get(f"/api/invitations/{new}")).status_code == 200
    problem(await accept(client, old), 404, "invitation_not_found")
    assert (await accept(client, new)).status_code == 200


async def test_an_identity_accord_did_not_create_is_not_adopted(
    client: httpx.AsyncClient, accord: Accord, creds: Tokens, fake: FakeIdentityProvider
) -> None:
    email = creds.email("foreign")
    await fake.create_direct(email, "Someone Else")
    _, token = await invited_token(client, accord, creds, email)
    problem(await accept(client, token), 409, "identity_exists")
    async with accord.db.transaction() as conn:
        rows = await conn.scalar(text("SELECT count(*) FROM users WHERE email = :e"), {"e": email})
    assert rows == 0
    found = await fake.find_by_email(email)
    assert found is not None and found.full_name == "Someone Else"
    problem(await accept(client, token), 409, "identity_exists")  # the same answer again
    # Once that account is gone, a resent link may try again (a new mailing, a new attempt).
    await fake.delete(found.remote_id)
    invitation_id = (await client.get(f"/api/invitations/{token}")).json()
    assert invitation_id["status"] == "pending"
    listed = await client.get(
        f"/api/admin/organizations/{creds.a}/invitations", headers=bearer(creds.platform)
    )
    [mine] = [i for i in listed.json()["items"] if i["email"] == email]
    resent = await client.post(
        f"/api/admin/invitations/{mine['id']}/resend", headers=bearer(creds.platform)
    )
    assert resent.status_code == 200, resent.text
    [fresh] = await mailed_tokens(accord, email)
    accepted = await accept(client, fresh)
    assert accepted.status_code == 200 and accepted.json()["new_user"] is True


async def test_an_organization_token_manages_only_its_own_invitations(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    theirs = await invite(client, creds, creds.email("b-side"), org=creds.b)
    assert theirs.status_code == 201
    b_id = theirs.json()["id"]
    mine = await client.post(
        f"/api/admin/organizations/{creds.a}/invitations",
        json={"email": creds.email("a-side")},
        headers=bearer(creds.org_a),
    )
    assert mine.status_code == 201, mine.text
    for target in (b_id, str(uuid4())):
        for method, path in (
            ("GET", f"/api/admin/invitations/{target}"),
            ("POST", f"/api/admin/invitations/{target}/resend"),
            ("DELETE", f"/api/admin/invitations/{target}"),
        ):
            answer = await client.request(method, path, headers=bearer(creds.org_a))
            body = problem(answer, 404, "invitation_not_found")
            assert b_id not in body["detail"] or target == b_id
    for org in (creds.b, uuid4()):
        listing = await client.get(
            f"/api/admin/organizations/{org}/invitations", headers=bearer(creds.org_a)
        )
        problem(listing, 403, "forbidden")
        creating = await client.post(
            f"/api/admin/organizations/{org}/invitations",
            json={"email": creds.email("x")},
            headers=bearer(creds.org_a),
        )
        problem(creating, 403, "forbidden")
    still = await client.get(f"/api/admin/invitations/{b_id}", headers=bearer(creds.org_b))
    assert still.status_code == 200 and still.json()["status"] == "pending"


async def test_twenty_concurrent_accepts_make_one_user_and_one_membership(
    local_client: httpx.AsyncClient, accord: Accord, creds: Tokens
) -> None:
    email = creds.email("race")
    _, token = await invited_token(local_client, accord, creds, email)
    answers = await asyncio.gather(*(accept(local_client, token) for _ in range(20)))
    assert {a.status_code for a in answers} <= {200, 409}
    retried = [a if a.status_code == 200 else await accept(local_client, token) for a in answers]
    assert all(a.status_code == 200 for a in retried), [a.text for a in retried]
    assert len({a.text for a in retried}) == 1  # one and the same answer
    async with accord.db.transaction() as conn:
        users = await conn.scalar(text("SELECT count(*) FROM users WHERE email = :e"), {"e": email})
        members = await conn.scalar(
            text(
                "SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id "
                "WHERE u.email = :e"
            ),
            {"e": email},
        )
    assert users == 1 and members == 1


async def test_thirty_invitations_race_into_five_free_seats(
    client: httpx.AsyncClient, accord: Accord, creds: Tokens
) -> None:
    org = await new_org(accord, f"Race {creds.tag}", max_users=5)
    answers = await asyncio.gather(
        *(invite(client, creds, creds.email(f"seat{i}"), org=org) for i in range(30))
    )
    assert sorted(a.status_code for a in answers) == [201] * 5 + [409] * 25
    assert all(a.json()["code"] == "organization_full" for a in answers if a.status_code == 409)
    pending = await client.get(
        f"/api/admin/organizations/{org}/invitations",
        params={"status": "pending"},
        headers=bearer(creds.platform),
    )
    assert len(pending.json()["items"]) == 5


async def test_the_access_log_never_records_a_link_token(
    client: httpx.AsyncClient, accord: Accord, creds: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="accord.api")
    _, token = await invited_token(client, accord, creds, creds.email("logged"))
    assert (await client.get(f"/api/invitations/{token}")).status_code == 200
    assert (await accept(client, token)).status_code == 200
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "accord.api"]
    assert any(line.get("route") == "/api/invitations/{token}" for line in lines)
    assert token not in "\n".join(r.getMessage() for r in caplog.records)


async def test_an_acceptance_waits_out_an_unavailable_identity_provider(
    client: httpx.AsyncClient, accord: Accord, creds: Tokens, fake: FakeIdentityProvider
) -> None:
    email = creds.email("later")
    _, token = await invited_token(client, accord, creds, email)
    fake.script("create", "unavailable")
    waiting = await accept(client, token)
    assert waiting.status_code == 202, waiting.text
    assert waiting.headers["location"] == f"/api/operations/{waiting.json()['operation_id']}"
    answered = await accept(client, token)  # the same link again: it resumes the operation
    assert answered.status_code == 200, answered.text
    assert answered.json()["new_user"] is True and answered.json()["user"]["status"] == "active"

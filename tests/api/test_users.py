"""Users and organizations over HTTP: create, read, list (paged), deprovision."""

from __future__ import annotations

from uuid import uuid4

import httpx

from tests.api.conftest import Tokens, bearer, problem


def new_user(org: object, email: str, **changes: object) -> dict:
    return {"email": email, "full_name": "Ada Lovelace", "organization_id": str(org), **changes}


async def test_a_platform_token_creates_a_user_with_a_temporary_password_shown_once(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    body = new_user(
        creds.a,
        email=f"  {creds.email('Ada')}".upper() + " ",
        credential="temp_password",
        role="org_admin",
        permissions=["reports", "billing"],
    )
    created = await client.post(
        "/api/admin/users", json=body, headers=bearer(creds.platform, **{"X-Acting-User": "root"})
    )
    assert created.status_code == 201, created.text
    result = created.json()
    assert result["user"]["email"] == creds.email("ada")
    assert result["user"]["status"] == "pending"
    assert result["user"]["require_password_change"] is True
    # The token that was authenticated, not the acting user it claims (tests/security).
    assert result["user"]["created_by"].startswith("token:")
    assert result["reused_identity"] is False
    assert len(result["temporary_password"]) == 16
    [membership] = result["user"]["organizations"]
    assert membership == {
        "organization_id": str(creds.a),
        "role": "org_admin",
        "permissions": ["billing", "reports"],
    }
    read = await client.get(f"/api/admin/users/{result['user']['id']}", headers=bearer(creds.org_a))
    assert read.status_code == 200
    assert read.json() == result["user"] | {"updated_at": read.json()["updated_at"]}
    assert "temporary_password" not in read.text


async def test_an_invited_user_has_no_password_in_the_response(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    created = await client.post(
        f"/api/admin/organizations/{creds.a}/users",
        json={"email": creds.email("bob"), "full_name": "Bob"},
        headers=bearer(creds.org_a),
    )
    assert created.status_code == 201, created.text
    assert created.json()["temporary_password"] is None
    assert created.json()["credential"] == "invite"


async def test_users_are_listed_a_page_at_a_time(client: httpx.AsyncClient, creds: Tokens) -> None:
    emails = [creds.email(f"u{n}") for n in range(5)]
    for email in [*emails, creds.email("other")]:
        org = creds.b if email == creds.email("other") else creds.a
        response = await client.post(
            "/api/admin/users", json=new_user(org, email), headers=bearer(creds.platform)
        )
        assert response.status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params = {
            "limit": 2,
            "organization_id": str(creds.a),
            **({"cursor": cursor} if cursor else {}),
        }
        page = (
            await client.get("/api/admin/users", params=params, headers=bearer(creds.platform))
        ).json()
        assert len(page["items"]) <= 2
        seen += [u["email"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(emails)
    by_email = await client.get(
        "/api/admin/users", params={"email": emails[3].upper()}, headers=bearer(creds.platform)
    )
    assert [u["email"] for u in by_email.json()["items"]] == [emails[3]]


async def test_a_cursor_that_we_did_not_make_is_refused(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    response = await client.get(
        "/api/admin/users", params={"cursor": "abc"}, headers=bearer(creds.platform)
    )
    problem(response, 422, "invalid_input")


async def test_deprovisioning_removes_access_and_is_repeatable(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    created = await client.post(
        "/api/admin/users", json=new_user(creds.a, creds.email()), headers=bearer(creds.platform)
    )
    user_id = created.json()["user"]["id"]
    removed = await client.delete(f"/api/admin/users/{user_id}", headers=bearer(creds.org_a))
    assert removed.status_code == 200, removed.text
    assert removed.json()["status"] == "disabled"
    assert removed.json()["user_id"] == user_id
    again = await client.delete(f"/api/admin/users/{user_id}", headers=bearer(creds.platform))
    assert again.status_code == 200
    read = await client.get(f"/api/admin/users/{user_id}", headers=bearer(creds.platform))
    assert read.json()["status"] == "disabled" and read.json()["organizations"] == []


async def test_organizations_are_created_listed_and_read(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    created = await client.post(
        "/api/admin/organizations",
        json={
            "name": f"Globex Corp {creds.tag}",
            "max_users": 3,
            "settings": {"region": "eu", "seats": 3},
        },
        headers=bearer(creds.platform),
    )
    assert created.status_code == 201, created.text
    org = created.json()
    assert org["slug"] == f"globex-corp-{creds.tag}"
    assert org["kind"] == "team" and org["members"] == 0
    assert org["settings"] == {"region": "eu", "seats": 3}
    listed = await client.get("/api/admin/organizations", headers=bearer(creds.platform))
    slugs = {o["slug"] for o in listed.json()["items"]}
    assert {f"org-a-{creds.tag}", f"org-b-{creds.tag}", org["slug"]} <= slugs
    read = await client.get(f"/api/admin/organizations/{org['id']}", headers=bearer(creds.platform))
    assert read.json() == org
    missing = await client.get(
        f"/api/admin/organizations/{uuid4()}", headers=bearer(creds.platform)
    )
    problem(missing, 404, "organization_not_found")

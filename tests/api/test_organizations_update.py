"""PATCH of an organization over HTTP: display name, member limit, status; the version grows,
the limit never goes below the seats taken, and an organization token may rename only its own."""

from __future__ import annotations

import httpx

from tests.api.conftest import Tokens, bearer, problem


async def test_a_platform_token_changes_an_organization_and_its_version_grows(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    url = f"/api/admin/organizations/{creds.a}"
    before = (await client.get(url, headers=bearer(creds.platform))).json()
    changed = await client.patch(
        url,
        json={"display_name": "  Acme   Rockets ", "max_users": 3, "status": "active"},
        headers=bearer(creds.platform),
    )
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert (after["display_name"], after["max_users"], after["status"]) == (
        "Acme Rockets",
        3,
        "active",
    )
    assert after["version"] == before["version"] + 1 and after["slug"] == before["slug"]
    same = await client.patch(url, json={"max_users": 3}, headers=bearer(creds.platform))
    assert same.json()["version"] == after["version"]  # nothing changed, nothing grows
    events = await client.get(
        "/api/admin/audit-events",
        params={"organization_id": str(creds.a), "action": "organization.updated"},
        headers=bearer(creds.platform),
    )
    [event] = events.json()["items"]
    assert event["data"]["changes"]["max_users"] == {"from": 10, "to": 3}


async def test_the_limit_never_goes_below_the_seats_taken(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    for name in ("one", "two"):
        created = await client.post(
            f"/api/admin/organizations/{creds.a}/users",
            json={"email": creds.email(name), "full_name": name},
            headers=bearer(creds.platform),
        )
        assert created.status_code == 201
    url = f"/api/admin/organizations/{creds.a}"
    below = await client.patch(url, json={"max_users": 1}, headers=bearer(creds.platform))
    assert "2 seats" in problem(below, 409, "limit_below_usage")["detail"]
    exact = await client.patch(url, json={"max_users": 2}, headers=bearer(creds.platform))
    assert exact.status_code == 200 and exact.json()["max_users"] == 2
    problem(
        await client.patch(url, json={"max_users": 0}, headers=bearer(creds.platform)),
        422,
        "invalid_input",
    )
    problem(
        await client.patch(url, json={"status": "closed"}, headers=bearer(creds.platform)),
        422,
        "invalid_input",
    )


async def test_an_organization_token_may_only_rename_its_own(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    url = f"/api/admin/organizations/{creds.a}"
    renamed = await client.patch(url, json={"display_name": "Ours"}, headers=bearer(creds.org_a))
    assert renamed.status_code == 200 and renamed.json()["display_name"] == "Ours"
    for body in ({"max_users": 500}, {"status": "active"}):
        problem(await client.patch(url, json=body, headers=bearer(creds.org_a)), 403, "forbidden")
    problem(
        await client.patch(
            f"/api/admin/organizations/{creds.b}",
            json={"display_name": "Theirs"},
            headers=bearer(creds.org_a),
        ),
        404,
        "organization_not_found",
    )
    problem(
        await client.patch(url, json={"display_name": "\u200b"}, headers=bearer(creds.org_a)),
        422,
        "invalid_input",
    )

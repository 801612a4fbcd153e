"""``DELETE /api/admin/organizations/{id}``: offboarding through HTTP."""

from __future__ import annotations

from uuid import uuid4

import httpx

from accord.testing import FakeIdentityProvider
from tests.api.conftest import Tokens, bearer, problem


async def test_offboarding_answers_its_report_and_ends_the_organizations_access(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    made = await client.post(
        f"/api/admin/organizations/{creds.a}/users",
        json={"email": creds.email(), "full_name": "Ada"},
        headers=bearer(creds.platform),
    )
    assert made.status_code == 201, made.text
    user_id = made.json()["user"]["id"]

    url = f"/api/admin/organizations/{creds.a}"
    key = {"Idempotency-Key": f"offboard-{creds.tag}"}
    response = await client.delete(url, headers=bearer(creds.platform, **key))

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["organization_id"] == str(creds.a)
    assert (report["members_removed"], report["users_deprovisioned"]) == (1, 1)
    assert report["tokens_revoked"] == 1 and report["identity_deletes_refused"] == []
    again = await client.delete(url, headers=bearer(creds.platform, **key))
    assert again.json() == report  # replayed by its key
    problem(await client.delete(url, headers=bearer(creds.platform)), 404, "organization_not_found")
    problem(await client.get(url, headers=bearer(creds.org_a)), 401, "unauthenticated")
    user = await client.get(f"/api/admin/users/{user_id}", headers=bearer(creds.platform))
    assert user.json()["status"] == "disabled"


async def test_keep_users_keeps_the_people(client: httpx.AsyncClient, creds: Tokens) -> None:
    made = await client.post(
        f"/api/admin/organizations/{creds.b}/users",
        json={"email": creds.email("bob"), "full_name": "Bob"},
        headers=bearer(creds.platform),
    )
    user_id = made.json()["user"]["id"]
    response = await client.delete(
        f"/api/admin/organizations/{creds.b}?keep_users=true", headers=bearer(creds.platform)
    )
    assert response.status_code == 200, response.text
    assert response.json()["users_deprovisioned"] == 0
    user = await client.get(f"/api/admin/users/{user_id}", headers=bearer(creds.platform))
    assert user.json()["status"] == "pending" and user.json()["organizations"] == []


async def test_an_unreachable_idp_answers_202_with_the_operation(
    client: httpx.AsyncClient, creds: Tokens, fake: FakeIdentityProvider
) -> None:
    await client.post(
        f"/api/admin/organizations/{creds.a}/users",
        json={"email": creds.email(), "full_name": "Ada"},
        headers=bearer(creds.platform),
    )
    fake.script("delete", "unavailable")
    response = await client.delete(
        f"/api/admin/organizations/{creds.a}", headers=bearer(creds.platform)
    )
    assert response.status_code == 202, response.text
    operation = response.headers["location"]
    state = await client.get(operation, headers=bearer(creds.platform))
    assert state.json()["state"] == "open" and state.json()["kind"] == "delete_organization"


async def test_bad_ids_are_refused(client: httpx.AsyncClient, creds: Tokens) -> None:
    bad = await client.delete("/api/admin/organizations/acme", headers=bearer(creds.platform))
    problem(bad, 422, "invalid_input")
    missing = await client.delete(
        f"/api/admin/organizations/{uuid4()}", headers=bearer(creds.platform)
    )
    problem(missing, 404, "organization_not_found")

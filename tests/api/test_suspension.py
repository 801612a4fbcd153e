"""Suspension and reactivation over HTTP: both systems, idempotency, codes and tenancy."""

from __future__ import annotations

from uuid import UUID, uuid4

import httpx

from accord.bootstrap import Accord
from accord.domain.model import Role
from accord.testing import FakeIdentityProvider
from tests.api.conftest import Tokens, bearer, problem


async def make_user(client: httpx.AsyncClient, creds: Tokens, org: UUID, name: str = "ada") -> dict:
    created = await client.post(
        "/api/admin/users",
        json={"email": creds.email(name), "full_name": "Ada", "organization_id": str(org)},
        headers=bearer(creds.platform),
    )
    assert created.status_code == 201, created.text
    return created.json()["user"]


def remote_of(fake: FakeIdentityProvider, email: str):
    [remote] = [u for u in fake.users.values() if u.email == email]
    return remote


async def test_suspend_blocks_in_both_systems_and_reactivate_restores(
    client: httpx.AsyncClient, fake: FakeIdentityProvider, creds: Tokens
) -> None:
    user = await make_user(client, creds, creds.a)
    suspended = await client.post(
        f"/api/admin/users/{user['id']}/suspend", headers=bearer(creds.platform)
    )
    assert suspended.status_code == 200, suspended.text
    body = suspended.json()
    assert body["user_id"] == user["id"] and body["user"]["status"] == "suspended"
    assert body["user"]["organizations"] == user["organizations"]  # memberships stay
    assert remote_of(fake, creds.email()).enabled is False
    read = await client.get(f"/api/admin/users/{user['id']}", headers=bearer(creds.org_a))
    assert read.json()["status"] == "suspended"
    listed = await client.get(
        "/api/admin/users", params={"email": creds.email()}, headers=bearer(creds.platform)
    )
    assert [u["status"] for u in listed.json()["items"]] == ["suspended"]

    back = await client.post(
        f"/api/admin/users/{user['id']}/reactivate", headers=bearer(creds.platform)
    )
    assert back.status_code == 200, back.text
    assert back.json()["user"]["status"] == "pending"  # as before: never set a password
    assert remote_of(fake, creds.email()).enabled is True


async def test_suspend_and_reactivate_are_idempotent(
    client: httpx.AsyncClient, fake: FakeIdentityProvider, creds: Tokens
) -> None:
    user = await make_user(client, creds, creds.a)
    url = f"/api/admin/users/{user['id']}"
    headers = bearer(creds.platform, **{"Idempotency-Key": f"s-{uuid4()}"})
    first = await client.post(f"{url}/suspend", headers=headers)
    replay = await client.post(f"{url}/suspend", headers=headers)
    assert first.status_code == replay.status_code == 200
    assert replay.json() == first.json()
    again = await client.post(f"{url}/suspend", headers=bearer(creds.platform))
    assert again.status_code == 200 and again.json()["user"]["status"] == "suspended"
    assert again.json()["operation_id"] != first.json()["operation_id"]
    active = await make_user(client, creds, creds.a, "bob")
    noop = await client.post(
        f"/api/admin/users/{active['id']}/reactivate", headers=bearer(creds.platform)
    )
    assert noop.status_code == 200 and noop.json()["user"]["status"] == "pending"
    assert remote_of(fake, creds.email("bob")).enabled is True


async def test_202_while_the_identity_provider_is_down_with_access_cut_at_once(
    client: httpx.AsyncClient, fake: FakeIdentityProvider, creds: Tokens
) -> None:
    user = await make_user(client, creds, creds.a)
    fake.script("set_enabled", "unavailable")
    headers = bearer(creds.platform, **{"Idempotency-Key": f"s-{uuid4()}"})
    url = f"/api/admin/users/{user['id']}/suspend"
    pending = await client.post(url, headers=headers)
    assert pending.status_code == 202, pending.text
    assert pending.json()["code"] == "idp_unavailable"
    assert pending.headers["location"] == f"/api/operations/{pending.json()['operation_id']}"
    read = await client.get(f"/api/admin/users/{user['id']}", headers=bearer(creds.platform))
    assert read.json()["status"] == "suspended"  # the database cut access before the IdP call
    assert remote_of(fake, creds.email()).enabled is True
    done = await client.post(url, headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["operation_id"] == pending.json()["operation_id"]
    assert remote_of(fake, creds.email()).enabled is False


async def test_a_rejected_suspension_gives_the_user_back_their_status(
    client: httpx.AsyncClient, fake: FakeIdentityProvider, creds: Tokens
) -> None:
    user = await make_user(client, creds, creds.a)
    fake.script("set_enabled", "rejected")
    refused = await client.post(
        f"/api/admin/users/{user['id']}/suspend", headers=bearer(creds.platform)
    )
    problem(refused, 422, "idp_rejected")
    read = await client.get(f"/api/admin/users/{user['id']}", headers=bearer(creds.platform))
    assert read.json()["status"] == "pending"
    assert remote_of(fake, creds.email()).enabled is True


async def test_a_rejected_reactivation_keeps_the_user_suspended(
    client: httpx.AsyncClient, fake: FakeIdentityProvider, creds: Tokens
) -> None:
    user = await make_user(client, creds, creds.a)
    url = f"/api/admin/users/{user['id']}"
    assert (await client.post(f"{url}/suspend", headers=bearer(creds.platform))).status_code == 200
    fake.script("set_enabled", "rejected")
    problem(
        await client.post(f"{url}/reactivate", headers=bearer(creds.platform)), 422, "idp_rejected"
    )
    read = await client.get(url, headers=bearer(creds.platform))
    assert read.json()["status"] == "suspended"
    assert remote_of(fake, creds.email()).enabled is False


async def test_tenancy_own_users_only_and_shared_ones_are_the_platforms(
    client: httpx.AsyncClient, accord: Accord, creds: Tokens
) -> None:
    mine = await make_user(client, creds, creds.a, "mine")
    theirs = await make_user(client, creds, creds.b, "theirs")
    shared = await make_user(client, creds, creds.a, "shared")
    async with accord.store.transaction() as tx:
        await tx.memberships.put(
            user_id=UUID(shared["id"]), organization_id=creds.b, role=Role.ORG_USER, permissions=()
        )
    for action in ("suspend", "reactivate"):
        other = await client.post(
            f"/api/admin/users/{theirs['id']}/{action}", headers=bearer(creds.org_a)
        )
        missing = await client.post(
            f"/api/admin/users/{uuid4()}/{action}", headers=bearer(creds.org_a)
        )
        # G10: another tenant's user answers exactly as a missing one.
        assert problem(other, 404, "user_not_found")["title"] == missing.json()["title"]
        problem(missing, 404, "user_not_found")
        problem(
            await client.post(
                f"/api/admin/users/{shared['id']}/{action}", headers=bearer(creds.org_a)
            ),
            403,
            "forbidden",
        )
    own = await client.post(f"/api/admin/users/{mine['id']}/suspend", headers=bearer(creds.org_a))
    assert own.status_code == 200 and own.json()["user"]["status"] == "suspended"
    read = await client.get(f"/api/admin/users/{theirs['id']}", headers=bearer(creds.platform))
    assert read.json()["status"] == "pending"  # untouched by org A's attempts
    shared_by_platform = await client.post(
        f"/api/admin/users/{shared['id']}/suspend", headers=bearer(creds.platform)
    )
    assert shared_by_platform.json()["user"]["status"] == "suspended"


async def test_codes_for_bad_ids_deprovisioned_users_and_no_token(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    problem(
        await client.post("/api/admin/users/nope/suspend", headers=bearer(creds.platform)),
        422,
        "invalid_input",
    )
    user = await make_user(client, creds, creds.a)
    gone = await client.delete(f"/api/admin/users/{user['id']}", headers=bearer(creds.platform))
    assert gone.status_code == 200
    for action in ("suspend", "reactivate"):
        problem(
            await client.post(
                f"/api/admin/users/{user['id']}/{action}", headers=bearer(creds.platform)
            ),
            409,
            "user_deprovisioned",
        )
    problem(await client.post(f"/api/admin/users/{user['id']}/suspend"), 401, "unauthenticated")


async def test_a_suspended_users_email_is_still_taken_and_deprovisioning_works(
    client: httpx.AsyncClient, fake: FakeIdentityProvider, creds: Tokens
) -> None:
    user = await make_user(client, creds, creds.a)
    url = f"/api/admin/users/{user['id']}"
    assert (await client.post(f"{url}/suspend", headers=bearer(creds.platform))).status_code == 200
    again = await client.post(
        "/api/admin/users",
        json={"email": creds.email(), "full_name": "Ada", "organization_id": str(creds.b)},
        headers=bearer(creds.platform),
    )
    problem(again, 409, "email_exists")
    gone = await client.delete(url, headers=bearer(creds.platform))
    assert gone.status_code == 200 and gone.json()["status"] == "disabled"
    assert not [u for u in fake.users.values() if u.email == creds.email()]

"""Memberships over HTTP: list (paged), add or change (PUT), remove; the last admin, the
personal owner, seats, the tenancy matrix and the setting for a user left with no organization."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import httpx

from accord.config import Settings
from accord.entrypoints.api import create_app
from accord.testing import FakeIdentityProvider
from accord.testing.servers import serve_in_thread
from tests.api.conftest import Tokens, bearer, new_org, problem


async def user_in(
    client: httpx.AsyncClient, creds: Tokens, org: object, name: str, role: str = "org_user"
) -> str:
    response = await client.post(
        "/api/admin/users",
        json={
            "email": creds.email(name),
            "full_name": name,
            "organization_id": str(org),
            "role": role,
        },
        headers=bearer(creds.platform),
    )
    assert response.status_code == 201, response.text
    return response.json()["user"]["id"]


def member_url(org: object, user: object) -> str:
    return f"/api/admin/organizations/{org}/members/{user}"


async def audit_actions(client: httpx.AsyncClient, creds: Tokens, user: str) -> list[str]:
    found = await client.get(
        "/api/admin/audit-events", params={"user_id": user}, headers=bearer(creds.platform)
    )
    assert found.status_code == 200, found.text
    return [e["action"] for e in found.json()["items"] if e["action"].startswith("membership.")]


async def test_a_platform_token_adds_a_user_to_a_second_organization_and_changes_it(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    ada = await user_in(client, creds, creds.a, "ada")
    body = {"role": "org_admin", "permissions": ["reports", " billing ", "reports"]}

    added = await client.put(member_url(creds.b, ada), json=body, headers=bearer(creds.platform))
    assert added.status_code == 201, added.text
    expected = {
        "user_id": ada,
        "organization_id": str(creds.b),
        "email": creds.email("ada"),
        "role": "org_admin",
        "permissions": ["billing", "reports"],
    }
    assert added.json() == expected
    again = await client.put(member_url(creds.b, ada), json=body, headers=bearer(creds.platform))
    assert again.status_code == 200 and again.json() == expected  # idempotent: nothing changed

    changed = await client.put(
        member_url(creds.b, ada), json={"role": "org_admin"}, headers=bearer(creds.org_b)
    )
    assert changed.status_code == 200, changed.text  # the organization's own token may change it
    assert changed.json() == {**expected, "permissions": []}

    read = await client.get(f"/api/admin/users/{ada}", headers=bearer(creds.platform))
    assert {m["organization_id"]: m["role"] for m in read.json()["organizations"]} == {
        str(creds.a): "org_user",
        str(creds.b): "org_admin",
    }
    org_b = await client.get(f"/api/admin/organizations/{creds.b}", headers=bearer(creds.platform))
    assert org_b.json()["members"] == 1
    assert await audit_actions(client, creds, ada) == ["membership.added", "membership.updated"]


async def test_members_are_listed_a_page_at_a_time(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    ids = {await user_in(client, creds, creds.a, f"m{n}") for n in range(5)}
    await user_in(client, creds, creds.b, "elsewhere")
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await client.get(
            f"/api/admin/organizations/{creds.a}/members",
            params=params,
            headers=bearer(creds.org_a),
        )
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) <= 2
        seen.extend(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert [m["user_id"] for m in seen] == sorted(ids, key=UUID)
    assert {m["email"] for m in seen} == {creds.email(f"m{n}") for n in range(5)}
    bad = await client.get(
        f"/api/admin/organizations/{creds.a}/members",
        params={"cursor": "nonsense"},
        headers=bearer(creds.org_a),
    )
    problem(bad, 422, "invalid_input")


async def test_a_team_keeps_its_last_admin(client: httpx.AsyncClient, creds: Tokens) -> None:
    first = await user_in(client, creds, creds.a, "first", role="org_admin")
    second = await user_in(client, creds, creds.a, "second")

    demote = await client.put(
        member_url(creds.a, first), json={"role": "org_user"}, headers=bearer(creds.org_a)
    )
    body = problem(demote, 409, "last_admin")
    assert "another member" in body["detail"]
    problem(
        await client.delete(member_url(creds.a, first), headers=bearer(creds.platform)),
        409,
        "last_admin",
    )
    promoted = await client.put(
        member_url(creds.a, second), json={"role": "org_admin"}, headers=bearer(creds.org_a)
    )
    assert promoted.status_code == 200
    removed = await client.delete(member_url(creds.a, first), headers=bearer(creds.org_a))
    assert removed.status_code == 200, removed.text
    assert removed.json() == {
        "organization_id": str(creds.a),
        "user_id": first,
        "memberships_left": 0,
        "deprovision_operation_id": None,
    }
    kept = await client.get(f"/api/admin/users/{first}", headers=bearer(creds.platform))
    assert kept.json()["status"] == "pending" and kept.json()["organizations"] == []  # keep
    problem(
        await client.delete(member_url(creds.a, first), headers=bearer(creds.org_a)),
        404,
        "membership_not_found",
    )
    assert await audit_actions(client, creds, first) == ["membership.removed"]


async def test_a_personal_organizations_owner_stays_in_it(
    local_client: httpx.AsyncClient, creds: Tokens
) -> None:
    registered = await local_client.post(
        "/api/auth/register",
        json={
            "email": creds.email("owner"),
            "password": "a good long password",
            "full_name": "Owner",
            "organization_name": f"Owner's Garage {creds.tag}",
        },
    )
    assert registered.status_code == 201, registered.text
    owner = registered.json()["user"]["id"]
    personal = registered.json()["organization"]["id"]
    for response in (
        await local_client.delete(member_url(personal, owner), headers=bearer(creds.platform)),
        await local_client.put(
            member_url(personal, owner), json={"role": "org_user"}, headers=bearer(creds.platform)
        ),
    ):
        problem(response, 409, "owner_membership")
    guest = await user_in(local_client, creds, creds.a, "guest")
    added = await local_client.put(
        member_url(personal, guest), json={"role": "org_admin"}, headers=bearer(creds.platform)
    )
    assert added.status_code == 201
    gone = await local_client.delete(member_url(personal, guest), headers=bearer(creds.platform))
    assert gone.status_code == 200 and gone.json()["memberships_left"] == 1


async def test_adding_beyond_the_limit_is_organization_full(
    client: httpx.AsyncClient, creds: Tokens, accord
) -> None:
    small = await new_org(accord, f"Small {creds.tag}", max_users=1)
    await user_in(client, creds, small, "seated")
    late = await user_in(client, creds, creds.a, "late")
    full = await client.put(member_url(small, late), json={}, headers=bearer(creds.platform))
    problem(full, 409, "organization_full")
    read = await client.get(f"/api/admin/users/{late}", headers=bearer(creds.platform))
    assert [m["organization_id"] for m in read.json()["organizations"]] == [str(creds.a)]


async def test_bad_requests_name_what_is_wrong(client: httpx.AsyncClient, creds: Tokens) -> None:
    ada = await user_in(client, creds, creds.a, "ada")
    problem(
        await client.put(
            member_url(creds.a, ada), json={"role": "owner"}, headers=bearer(creds.platform)
        ),
        422,
        "invalid_input",
    )
    problem(
        await client.put(
            member_url(creds.a, ada), json={"rank": "x"}, headers=bearer(creds.platform)
        ),
        422,
        "invalid_input",
    )
    problem(
        await client.put(member_url(creds.a, uuid4()), json={}, headers=bearer(creds.platform)),
        404,
        "user_not_found",
    )
    problem(
        await client.put(member_url(uuid4(), ada), json={}, headers=bearer(creds.platform)),
        404,
        "organization_not_found",
    )


async def test_an_organization_token_sees_another_organizations_members_as_missing(
    client: httpx.AsyncClient, creds: Tokens
) -> None:
    """The tenancy matrix (G10): A's token on B's members answers as for a missing organization;
    on its own organization it works, except adding someone who is not yet a member."""
    in_b = await user_in(client, creds, creds.b, "b-admin", role="org_admin")
    in_a = await user_in(client, creds, creds.a, "a-member")
    missing = uuid4()
    for org in (creds.b, missing):
        for method, url, body in [
            ("GET", f"/api/admin/organizations/{org}/members", None),
            ("PUT", member_url(org, in_b), {"role": "org_user"}),
            ("PUT", member_url(org, in_a), {}),
            ("DELETE", member_url(org, in_b), None),
            ("PATCH", f"/api/admin/organizations/{org}", {"display_name": "Taken over"}),
        ]:
            response = await client.request(method, url, json=body, headers=bearer(creds.org_a))
            problem(response, 404, "organization_not_found")
    # A user of B, added to A by A's own token: refused, without saying whether they exist.
    refused = await client.put(member_url(creds.a, in_b), json={}, headers=bearer(creds.org_a))
    nobody = await client.put(member_url(creds.a, missing), json={}, headers=bearer(creds.org_a))
    assert problem(refused, 404, "user_not_found")["detail"].startswith("No member")
    assert problem(nobody, 404, "user_not_found")["detail"].startswith("No member")

    b_members = await client.get(
        f"/api/admin/organizations/{creds.b}/members", headers=bearer(creds.org_b)
    )
    assert [m["user_id"] for m in b_members.json()["items"]] == [in_b]
    own = await client.get(
        f"/api/admin/organizations/{creds.a}/members", headers=bearer(creds.org_a)
    )
    assert [m["user_id"] for m in own.json()["items"]] == [in_a]
    renamed = await client.patch(
        f"/api/admin/organizations/{creds.a}",
        json={"display_name": "Our Name"},
        headers=bearer(creds.org_a),
    )
    assert renamed.status_code == 200 and renamed.json()["display_name"] == "Our Name"
    gone = await client.delete(member_url(creds.a, in_a), headers=bearer(creds.org_a))
    assert gone.status_code == 200


async def test_the_last_membership_removed_can_deprovision_the_user(
    settings: Settings, fake: FakeIdentityProvider, client: httpx.AsyncClient, creds: Tokens
) -> None:
    ada = await user_in(client, creds, creds.a, "ada")
    bob = await user_in(client, creds, creds.a, "bob")
    added = await client.put(member_url(creds.b, bob), json={}, headers=bearer(creds.platform))
    assert added.status_code == 201
    remote = await fake.find_by_email(creds.email("ada"))  # the identity accord made for ada
    assert remote is not None
    deprovisioning = settings.model_copy(update={"last_membership_removed": "deprovision"})
    with serve_in_thread(create_app(settings=deprovisioning, idp=fake), lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as other:
            shared = await other.delete(member_url(creds.a, bob), headers=bearer(creds.org_a))
            assert shared.json()["memberships_left"] == 1
            assert shared.json()["deprovision_operation_id"] is None  # still in B
            last = await other.delete(member_url(creds.a, ada), headers=bearer(creds.org_a))
            assert last.status_code == 200, last.text
            operation = last.json()["deprovision_operation_id"]
            assert operation is not None
            done = await other.get(f"/api/operations/{operation}", headers=bearer(creds.platform))
            assert done.json()["state"] == "succeeded", done.text
    read = await client.get(f"/api/admin/users/{ada}", headers=bearer(creds.platform))
    assert read.json()["status"] == "disabled"
    assert await fake.find_by_email(creds.email("ada")) is None  # gone from the IdP too
    bob_now = await client.get(f"/api/admin/users/{bob}", headers=bearer(creds.platform))
    assert bob_now.json()["status"] == "pending"


async def test_no_door_strands_a_team_without_its_admin(
    settings: Settings, fake: FakeIdentityProvider, client: httpx.AsyncClient, creds: Tokens
) -> None:
    """Deprovisioning, an organization's DELETE of a shared user and a removal that would
    deprovision all pass the same last-admin rule as a plain removal, and change nothing when
    refused."""
    boss = await user_in(client, creds, creds.a, "boss", role="org_admin")
    await user_in(client, creds, creds.a, "staff")
    shared = await user_in(client, creds, creds.b, "shared", role="org_admin")
    await user_in(client, creds, creds.b, "b_staff")
    added = await client.put(member_url(creds.a, shared), json={}, headers=bearer(creds.platform))
    assert added.status_code == 201  # an org_user in A, B's only admin

    refusals = [
        await client.delete(f"/api/admin/users/{boss}", headers=bearer(creds.platform)),
        await client.delete(f"/api/admin/users/{shared}", headers=bearer(creds.org_b)),
    ]
    deprovisioning = settings.model_copy(update={"last_membership_removed": "deprovision"})
    with serve_in_thread(create_app(settings=deprovisioning, idp=fake), lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as other:
            refusals.append(
                await other.delete(member_url(creds.a, boss), headers=bearer(creds.org_a))
            )
    for response in refusals:
        body = problem(response, 409, "last_admin")
        assert "make another member org_admin first" in body["detail"]

    for user, orgs in ((boss, {str(creds.a)}), (shared, {str(creds.a), str(creds.b)})):
        read = await client.get(f"/api/admin/users/{user}", headers=bearer(creds.platform))
        assert read.json()["status"] == "pending", read.text
        assert {m["organization_id"] for m in read.json()["organizations"]} == orgs
    assert await fake.find_by_email(creds.email("boss")) is not None  # the IdP untouched

    await user_in(client, creds, creds.a, "deputy", role="org_admin")
    gone = await client.delete(f"/api/admin/users/{boss}", headers=bearer(creds.platform))
    assert gone.status_code == 200, gone.text  # with a second admin, the first may go
    assert await audit_actions(client, creds, boss) == ["membership.removed"]
    assert await fake.find_by_email(creds.email("boss")) is None


async def test_the_last_member_of_a_team_may_leave_it(
    client: httpx.AsyncClient, creds: Tokens, accord
) -> None:
    """No one is left without an administrator when the one member leaves: an empty team
    organization is allowed (a platform administrator may delete it or add members)."""
    org = await new_org(accord, f"Solo {creds.tag}")
    solo = await user_in(client, creds, org, "solo", role="org_admin")
    demoted = await client.put(
        member_url(org, solo), json={"role": "org_user"}, headers=bearer(creds.platform)
    )
    problem(demoted, 409, "last_admin")  # staying as no one's administrator is refused
    left = await client.delete(member_url(org, solo), headers=bearer(creds.platform))
    assert left.status_code == 200, left.text
    assert left.json()["memberships_left"] == 0

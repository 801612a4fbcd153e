"""SCIM Groups over real HTTP, as Okta and Microsoft Entra ID send them: Okta's group push
(lookup by displayName, create, member add and ``members[value eq "…"]`` removal, a rename by
pathless replace, PUT with the whole member list), Entra's (``externalId``, lookups with
``excludedAttributes=members``, capitalised ops, removal by a value list), paging, the refusals an
admin can act on, and the roles a mapped group grants in accord."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import pytest

from accord.bootstrap import Accord
from accord.services import directory, scim_groups
from tests.api.conftest import PLATFORM, Tokens
from tests.api.scim_helpers import Scim, entra_user, okta_user, scim_clients, scim_error

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


@pytest.fixture
async def scim(accord: Accord, client: Any, creds: Tokens) -> Scim:
    return await scim_clients(accord, client, creds)


async def _user(scim: Scim, name: str, token: str | None = None) -> str:
    response = await scim.post("/Users", okta_user(scim.creds.email(name)), token)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _group(
    scim: Scim, name: str, *members: str, external_id: str | None = None, token: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "displayName": name,
        "members": [{"value": m} for m in members],
    }
    if external_id:
        body["externalId"] = external_id
    response = await scim.post("/Groups", body, token)
    assert response.status_code == 201, response.text
    assert response.headers["Location"].endswith(f"/Groups/{response.json()['id']}")
    return response.json()


def _members(group: dict[str, Any]) -> list[str]:
    return [m["value"] for m in group.get("members", [])]


async def _role(accord: Accord, user_id: str) -> tuple[str, list[str]]:
    [membership] = (await directory.get_user(accord, user_id))["organizations"]
    return membership["role"], membership["permissions"]


async def test_okta_group_push(scim: Scim) -> None:
    ada, bob = await _user(scim, "ada"), await _user(scim, "bob")
    lookup = await scim.get("/Groups", filter='displayName eq "Engineering"')
    assert lookup.json()["totalResults"] == 0  # Okta looks before it creates
    group = await _group(scim, "Engineering")
    path = f"/Groups/{group['id']}"
    added = await scim.patch(
        path, [{"op": "add", "path": "members", "value": [{"value": ada}, {"value": bob}]}]
    )
    assert added.status_code == 200, added.text
    assert _members(added.json()) == [ada, bob]
    removed = await scim.patch(path, [{"op": "remove", "path": f'members[value eq "{ada}"]'}])
    assert _members(removed.json()) == [bob]
    renamed = await scim.patch(
        path, [{"op": "replace", "value": {"id": group["id"], "displayName": "Eng"}}]
    )
    assert renamed.json()["displayName"] == "Eng" and _members(renamed.json()) == [bob]
    body = {"schemas": [GROUP_SCHEMA], "displayName": "Eng", "members": [{"value": ada}]}
    replaced = await scim.put(path, body)
    assert replaced.status_code == 200 and _members(replaced.json()) == [ada]
    got = (await scim.get(path)).json()
    assert got["displayName"] == "Eng" and _members(got) == [ada]
    assert got["members"][0]["$ref"].endswith(f"/Users/{ada}")
    found = (await scim.get("/Groups", filter='displayName eq "eng"')).json()  # any case
    assert [g["id"] for g in found["Resources"]] == [group["id"]]


async def test_entra_group_provisioning(scim: Scim) -> None:
    token = scim.token_b
    users = []
    for name in ("grace", "alan", "edsger"):
        made = await scim.post(
            "/Users", entra_user(scim.creds.email(name), external_id=name), token
        )
        users.append(made.json()["id"])
    external_id = str(uuid4())
    group = await _group(scim, "Sales", external_id=external_id, token=token)
    assert group["externalId"] == external_id
    for query in (f'externalId eq "{external_id}"', 'displayName eq "Sales"'):
        listing = await scim.get("/Groups", token, filter=query, excludedAttributes="members")
        [found] = listing.json()["Resources"]
        assert found["id"] == group["id"] and "members" not in found, query
    path = f"/Groups/{group['id']}"
    ops = [{"op": "Add", "path": "members", "value": [{"value": u} for u in users]}]
    assert _members((await scim.patch(path, ops, token)).json()) == users
    ops = [{"op": "Remove", "path": "members", "value": [{"value": u} for u in users[:2]]}]
    assert _members((await scim.patch(path, ops, token)).json()) == users[2:]
    ops = [{"op": "Replace", "path": "displayName", "value": "Sales EMEA"}]
    assert (await scim.patch(path, ops, token)).json()["displayName"] == "Sales EMEA"
    assert (await scim.delete(path, token)).status_code == 204
    scim_error(await scim.get(path, token), 404)
    assert (await scim.get("/Groups", token)).json()["totalResults"] == 0


async def test_groups_page_in_a_stable_order(scim: Scim) -> None:
    made = [(await _group(scim, f"group {i}"))["id"] for i in range(3)]
    pages = [
        (await scim.get("/Groups", startIndex=start, count=1)).json() for start in (1, 2, 3, 4)
    ]
    assert [[g["id"] for g in page["Resources"]] for page in pages] == [[m] for m in made] + [[]]
    assert all(page["totalResults"] == 3 for page in pages)


async def test_refusals_an_admin_can_act_on(scim: Scim) -> None:
    ada = await _user(scim, "ada")
    group = await _group(scim, "Admins", ada, external_id="okta-1")
    again = await _group(scim, "Admins", ada, external_id="okta-1")  # a retried create
    assert again["id"] == group["id"]
    body = {"schemas": [GROUP_SCHEMA], "displayName": "ADMINS"}
    assert (
        "already exists"
        in scim_error(await scim.post("/Groups", body), 409, "uniqueness")["detail"]
    )
    path = f"/Groups/{group['id']}"
    for value in (str(uuid4()), "not-an-id"):
        ops = [{"op": "add", "path": "members", "value": [{"value": value}]}]
        error = scim_error(await scim.patch(path, ops), 400, "invalidValue")
        assert "POST /Users" in error["detail"]
    scim_error(await scim.get("/Groups/not-an-id"), 404)
    scim_error(await scim.get(f"/Groups/{uuid4()}"), 404)
    assert _members((await scim.get(path)).json()) == [ada]


async def test_a_mapped_group_grants_its_role_and_permissions(scim: Scim, accord: Accord) -> None:
    org = scim.creds.a
    ada, bob = await _user(scim, "ada"), await _user(scim, "bob")
    await scim_groups.map_group(
        accord, org, "Admins", role="org_admin", permissions=["billing"], caller=PLATFORM
    )
    await scim_groups.map_group(
        accord, org, "Support", role="org_user", permissions=["tickets"], caller=PLATFORM
    )
    admins = await _group(scim, "Admins", ada, bob)
    support = await _group(scim, "Support", bob)
    assert await _role(accord, ada) == ("org_admin", ["billing"])
    assert await _role(accord, bob) == ("org_admin", ["billing", "tickets"])
    removed = await scim.patch(
        f"/Groups/{admins['id']}", [{"op": "remove", "path": f'members[value eq "{bob}"]'}]
    )
    assert removed.status_code == 200, removed.text
    assert await _role(accord, bob) == ("org_user", ["tickets"])
    # ada is now the organization's only org_admin: the change that would demote her is refused
    last = await scim.delete(f"/Groups/{admins['id']}")
    assert "last org_admin" in scim_error(last, 409)["detail"]
    assert await _role(accord, ada) == ("org_admin", ["billing"])
    assert _members((await scim.get(f"/Groups/{admins['id']}")).json()) == [ada]
    # a mapping set later applies to the group's members at once
    await scim_groups.map_group(accord, org, "Support", role="org_admin", caller=PLATFORM)
    assert await _role(accord, bob) == ("org_admin", [])
    assert (await scim.delete(f"/Groups/{admins['id']}")).status_code == 204
    assert await _role(accord, ada) == ("org_user", [])
    assert _members((await scim.get(f"/Groups/{support['id']}")).json()) == [bob]


async def test_a_group_without_a_grant_changes_no_role(scim: Scim, accord: Accord) -> None:
    ada = await _user(scim, "ada")
    group = await _group(scim, "Readers", ada)
    assert await _role(accord, ada) == ("org_user", [])
    assert (await scim.delete(f"/Groups/{group['id']}")).status_code == 204
    assert await _role(accord, ada) == ("org_user", [])


async def test_a_deleted_user_leaves_its_groups(scim: Scim) -> None:
    ada, bob = await _user(scim, "ada"), await _user(scim, "bob")
    group = await _group(scim, "Everyone", ada, bob)
    assert (await scim.delete(f"/Users/{ada}")).status_code == 204
    assert _members((await scim.get(f"/Groups/{group['id']}")).json()) == [bob]
    again = await scim.post("/Users", okta_user(scim.creds.email("ada")))
    assert again.status_code == 201, again.text  # pushed again: a member of no group yet
    assert _members((await scim.get(f"/Groups/{group['id']}")).json()) == [bob]


async def test_member_adds_sent_at_once_all_hold(scim: Scim) -> None:
    users = [await _user(scim, f"user{i}") for i in range(4)]
    group = await _group(scim, "Burst")
    path = f"/Groups/{group['id']}"
    answers = await asyncio.gather(
        *(
            scim.patch(path, [{"op": "add", "path": "members", "value": [{"value": u}]}])
            for u in users
        )
    )
    assert [a.status_code for a in answers] == [200] * 4
    assert sorted(_members((await scim.get(path)).json())) == sorted(users)

"""G10 over SCIM: one organization's SCIM token sees and changes nothing of another's (lists,
filters, GET by id, PUT, PATCH, DELETE, a create of its person; its groups, nor can it put
another's users in its own groups), and a SCIM token is no API token (nor the reverse).
Another tenant's user or group answers exactly as a missing one."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from accord.bootstrap import Accord
from accord.services import directory, scim_tokens
from tests.api.conftest import (  # noqa: F401  (the API tests' fixtures: a server per module)
    Tokens,
    client,
    creds,
    fake,
    json_logs,
    no_leftover_faults,
    serve,
    settings,
)
from tests.api.scim_helpers import Scim, okta_user, scim_clients, scim_error


@pytest.fixture
async def scim(accord: Accord, client: Any, creds: Tokens) -> Scim:  # noqa: F811
    return await scim_clients(accord, client, creds)


async def _a_user(scim: Scim) -> dict[str, Any]:
    body = okta_user(scim.creds.email("tenant-a"), external_id="ext-a")
    response = await scim.post("/Users", body, scim.token_a)
    assert response.status_code == 201, response.text
    return response.json()


async def test_lists_and_filters_of_b_show_nothing_of_a(scim: Scim) -> None:
    a_user = await _a_user(scim)
    assert (await scim.get("/Users", scim.token_b)).json()["totalResults"] == 0
    for query in (
        f'userName eq "{a_user["userName"]}"',
        'externalId eq "ext-a"',
        f'emails[type eq "work"].value eq "{a_user["userName"]}"',
    ):
        body = (await scim.get("/Users", scim.token_b, filter=query)).json()
        assert body["totalResults"] == 0 and body["Resources"] == [], query
    searched = await scim.post("/Users/.search", {"filter": 'externalId eq "ext-a"'}, scim.token_b)
    assert searched.json()["totalResults"] == 0


async def test_b_cannot_read_change_or_delete_a_user_of_a(scim: Scim, accord: Accord) -> None:
    a_user = await _a_user(scim)
    path = f"/Users/{a_user['id']}"
    missing = f"/Users/{uuid4()}"
    for target in (path, missing):  # another tenant's user answers as a missing one
        scim_error(await scim.get(target, scim.token_b), 404)
        ops = [{"op": "replace", "value": {"active": False, "displayName": "Taken Over"}}]
        scim_error(await scim.patch(target, ops, scim.token_b), 404)
        body = okta_user(scim.creds.email("tenant-a"), given="Taken", family="Over")
        scim_error(await scim.put(target, body, scim.token_b), 404)
        scim_error(await scim.delete(target, scim.token_b), 404)
    user = await directory.get_user(accord, a_user["id"])
    assert user["status"] != "suspended" and user["full_name"] == "Ada Lovelace"
    assert [m["organization_id"] for m in user["organizations"]] == [str(scim.creds.a)]
    assert (await scim.get(path, scim.token_a)).json()["displayName"] == "Ada Lovelace"


async def test_b_pushing_a_person_of_a_does_not_take_the_account(
    scim: Scim, accord: Accord
) -> None:
    a_user = await _a_user(scim)
    pushed = await scim.post("/Users", okta_user(a_user["userName"]), scim.token_b)
    scim_error(pushed, 409, "uniqueness")
    user = await directory.get_user(accord, a_user["id"])
    assert [m["organization_id"] for m in user["organizations"]] == [str(scim.creds.a)]


async def test_only_a_live_scim_token_is_let_in(scim: Scim, accord: Accord) -> None:
    anonymous = await scim.http.get("/scim/v2/Users")
    scim_error(anonymous, 401)
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    scim_error(await scim.get("/Users", scim.creds.org_a), 401)  # an API token is not one
    scim_error(await scim.get("/Users", "scim_" + "x" * 43), 401)
    admin = await scim.http.get(
        "/api/admin/users", headers={"Authorization": f"Bearer {scim.token_a}"}
    )
    assert admin.status_code == 401  # and a SCIM token is no API token
    [record] = await scim_tokens.list_scim_tokens(accord, scim.creds.a)
    await scim_tokens.revoke_scim_token(accord, record["id"])
    scim_error(await scim.get("/Users", scim.token_a), 401)
    assert (await scim.get("/Users", scim.token_b)).status_code == 200  # B's still works


GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


async def _a_group(scim: Scim, *members: str) -> dict[str, Any]:
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "A Admins",
        "externalId": "ext-group-a",
        "members": [{"value": m} for m in members],
    }
    response = await scim.post("/Groups", body, scim.token_a)
    assert response.status_code == 201, response.text
    return response.json()


async def test_b_sees_and_changes_none_of_the_groups_of_a(scim: Scim) -> None:
    a_user = await _a_user(scim)
    group = await _a_group(scim, a_user["id"])
    assert (await scim.get("/Groups", scim.token_b)).json()["totalResults"] == 0
    for query in ('displayName eq "A Admins"', 'externalId eq "ext-group-a"'):
        body = (await scim.get("/Groups", scim.token_b, filter=query)).json()
        assert body["totalResults"] == 0 and body["Resources"] == [], query
    path, missing = f"/Groups/{group['id']}", f"/Groups/{uuid4()}"
    for target in (path, missing):  # another tenant's group answers as a missing one
        scim_error(await scim.get(target, scim.token_b), 404)
        ops = [{"op": "replace", "value": {"displayName": "Taken Over", "members": []}}]
        scim_error(await scim.patch(target, ops, scim.token_b), 404)
        body = {"schemas": [GROUP_SCHEMA], "displayName": "Taken Over", "members": []}
        scim_error(await scim.put(target, body, scim.token_b), 404)
        scim_error(await scim.delete(target, scim.token_b), 404)
    kept = (await scim.get(path, scim.token_a)).json()
    assert kept["displayName"] == "A Admins"
    assert [m["value"] for m in kept["members"]] == [a_user["id"]]


async def test_b_cannot_put_a_user_of_a_in_its_groups(scim: Scim) -> None:
    a_user = await _a_user(scim)
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "B Group",
        "members": [{"value": a_user["id"]}],
    }
    scim_error(await scim.post("/Groups", body, scim.token_b), 400, "invalidValue")
    body["members"] = []
    created = await scim.post("/Groups", body, scim.token_b)
    assert created.status_code == 201
    ops = [{"op": "add", "path": "members", "value": [{"value": a_user["id"]}]}]
    refused = await scim.patch(f"/Groups/{created.json()['id']}", ops, scim.token_b)
    error = scim_error(refused, 400, "invalidValue")
    unknown = scim_error(
        await scim.patch(
            f"/Groups/{created.json()['id']}",
            [{"op": "add", "path": "members", "value": [{"value": str(uuid4())}]}],
            scim.token_b,
        ),
        400,
        "invalidValue",
    )
    assert error["detail"].replace(a_user["id"], "X") == unknown["detail"].replace(
        unknown["detail"].split("'")[1], "X"
    )  # another tenant's user is refused exactly as an unknown id
    group = (await scim.get(f"/Groups/{created.json()['id']}", scim.token_b)).json()
    assert group.get("members", []) == []

"""Microsoft Entra ID's provisioning flow over real HTTP: its create body (the enterprise
extension and attributes accord does not store), its lookups (``externalId eq``, ``userName eq``,
``emails[type eq "work"].value eq``, ``and``), its PATCH dialect (capitalised ops, booleans as
strings, pathless replace with a value object, filtered paths) and its retry of a create after a
timeout, sent again or concurrently: one user. Also the trust rules for an accord user that
existed before the SCIM client pushed it."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import pytest

from accord.bootstrap import Accord
from accord.services import directory
from tests.api.conftest import Tokens
from tests.api.scim_helpers import Scim, entra_user, scim_clients, scim_error


@pytest.fixture
async def scim(accord: Accord, client: Any, creds: Tokens) -> Scim:
    return await scim_clients(accord, client, creds)


async def _entra_user(scim: Scim, name: str = "grace") -> dict[str, Any]:
    body = entra_user(scim.creds.email(name), external_id=str(uuid4()))
    response = await scim.post("/Users", body, scim.token_b)
    assert response.status_code == 201, response.text
    return response.json()


async def _admin_create(scim: Scim, org: UUID, email: str) -> dict[str, Any]:
    """A user made through accord's own admin API, before any SCIM push."""
    response = await scim.http.post(
        f"/api/admin/organizations/{org}/users",
        headers={"Authorization": f"Bearer {scim.creds.platform}"},
        json={"email": email, "full_name": "Made Before"},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _status(accord: Accord, user_id: str) -> str:
    return (await directory.get_user(accord, user_id))["status"]


async def test_create_keeps_external_id_and_drops_what_accord_does_not_store(scim: Scim) -> None:
    created = await _entra_user(scim)
    assert created["externalId"] and created["displayName"] == "Grace Hopper"
    assert "title" not in created
    assert not any("enterprise" in key for key in created)


async def test_the_lookups_entra_sends(scim: Scim) -> None:
    created = await _entra_user(scim)
    await _entra_user(scim, "other")
    email = created["userName"]
    for query in (
        f'externalId eq "{created["externalId"]}"',
        f'userName eq "{email}"',
        f'emails[type eq "work"].value eq "{email}"',
        f'userName eq "{email}" and externalId eq "{created["externalId"]}"',
    ):
        body = (await scim.get("/Users", scim.token_b, filter=query)).json()
        assert [r["id"] for r in body["Resources"]] == [created["id"]], query
    none = f'userName eq "{email}" and externalId eq "{uuid4()}"'
    assert (await scim.get("/Users", scim.token_b, filter=none)).json()["totalResults"] == 0
    scim_error(await scim.get("/Users", scim.token_b, filter="userName eq"), 400, "invalidFilter")


async def test_capitalised_ops_and_a_filtered_email_path_change_the_account(
    scim: Scim, accord: Accord
) -> None:
    created = await _entra_user(scim)
    new_email = scim.creds.email("grace.new")
    ops = [
        {"op": "Replace", "path": "displayName", "value": "Amazing Grace"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": new_email},
        {"op": "Add", "path": "name.givenName", "value": "Amazing"},
    ]
    patched = await scim.patch(f"/Users/{created['id']}", ops, scim.token_b)
    assert patched.status_code == 200, patched.text
    assert patched.json()["emails"][0]["value"] == new_email
    user = await directory.get_user(accord, created["id"])
    assert (user["email"], user["full_name"]) == (new_email, "Amazing Grace")


async def test_active_false_as_a_string_suspends_and_true_reactivates(
    scim: Scim, accord: Accord
) -> None:
    created = await _entra_user(scim)
    ops = [{"op": "Replace", "path": "active", "value": "False"}]
    assert (await scim.patch(f"/Users/{created['id']}", ops, scim.token_b)).json()[
        "active"
    ] is False
    assert await _status(accord, created["id"]) == "suspended"
    ops = [{"op": "Replace", "value": {"active": "True", "displayName": "Grace B. Hopper"}}]
    back = (await scim.patch(f"/Users/{created['id']}", ops, scim.token_b)).json()
    assert back["active"] is True and back["displayName"] == "Grace B. Hopper"
    assert await _status(accord, created["id"]) != "suspended"


async def test_legacy_forms_remove_with_a_value_and_a_path_filter_with_no_entry(
    scim: Scim,
) -> None:
    created = await _entra_user(scim)
    home = scim.creds.email("grace.home")
    add = [{"op": "Add", "path": 'emails[type eq "home"].value', "value": home}]
    added = (await scim.patch(f"/Users/{created['id']}", add, scim.token_b)).json()
    assert {e["value"] for e in added["emails"]} == {created["userName"], home}
    remove = [{"op": "Remove", "path": "emails", "value": [{"value": home, "type": "home"}]}]
    removed = (await scim.patch(f"/Users/{created['id']}", remove, scim.token_b)).json()
    assert [e["value"] for e in removed["emails"]] == [created["userName"]]


async def test_a_create_retried_after_a_timeout_makes_one_user(scim: Scim, accord: Accord) -> None:
    body = entra_user(scim.creds.email("retry"), external_id=str(uuid4()))
    first = await scim.post("/Users", body, scim.token_b)
    again = await scim.post("/Users", body, scim.token_b)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    page = await directory.get_user(accord, first.json()["id"])
    assert page["email"] == scim.creds.email("retry")


async def test_the_same_create_sent_twice_concurrently_makes_one_user(
    scim: Scim, accord: Accord
) -> None:
    bodies = [entra_user(scim.creds.email(f"burst{i}"), external_id=str(uuid4())) for i in range(8)]
    answers = await asyncio.gather(
        *(scim.post("/Users", body, scim.token_b) for body in bodies for _ in range(2))
    )
    assert all(a.status_code == 201 for a in answers), [a.text for a in answers]
    for i in range(8):
        pair = {answers[2 * i].json()["id"], answers[2 * i + 1].json()["id"]}
        assert len(pair) == 1
    listed = (await scim.get("/Users", scim.token_b, count=100)).json()
    assert listed["totalResults"] == 8
    members = await directory.get_organization(accord, scim.creds.b)
    assert members["members"] == 8


async def test_an_accord_member_made_by_accord_is_linked_not_duplicated(
    scim: Scim, accord: Accord
) -> None:
    email = scim.creds.email("existing")
    made = await _admin_create(scim, scim.creds.b, email)
    pushed = await scim.post("/Users", entra_user(email, external_id="e-1"), scim.token_b)
    assert pushed.status_code == 201, pushed.text
    assert pushed.json()["id"] == made["user"]["id"]


async def test_an_accord_user_of_another_organization_is_refused_with_what_to_do(
    scim: Scim, accord: Accord
) -> None:
    email = scim.creds.email("elsewhere")
    made = await _admin_create(scim, scim.creds.a, email)
    refused = await scim.post("/Users", entra_user(email, external_id="e-2"), scim.token_b)
    body = scim_error(refused, 409, "uniqueness")
    assert "not a member of this organization" in body["detail"]
    assert "administrator" in body["detail"]
    user = await directory.get_user(accord, made["user"]["id"])  # untouched
    assert [UUID(m["organization_id"]) for m in user["organizations"]] == [scim.creds.a]
    # The userName was not kept by the refused create.
    assert (await scim.get("/Users", scim.token_b, filter=f'userName eq "{email}"')).json()[
        "totalResults"
    ] == 0

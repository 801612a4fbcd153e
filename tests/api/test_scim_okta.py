"""Okta's SCIM 2.0 SPEC Test (its Runscope suite), step by step over real HTTP, in its order
(numbered R1-R12 here), with Okta's request shapes: its content type, its create
body (password, groups and locale that accord drops), its lookup-then-create, its PUT profile
updates and its pathless PATCH of ``active``."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from accord.bootstrap import Accord
from tests.api.conftest import Tokens
from tests.api.scim_helpers import (
    LIST_SCHEMA,
    USER_SCHEMA,
    Scim,
    okta_user,
    scim_clients,
    scim_error,
)


@pytest.fixture
async def scim(accord: Accord, client: Any, creds: Tokens) -> Scim:
    return await scim_clients(accord, client, creds)


async def _okta_user(scim: Scim, name: str = "okta") -> dict[str, Any]:
    response = await scim.post("/Users", okta_user(scim.creds.email(name)))
    assert response.status_code == 201, response.text
    return response.json()


async def test_r1_users_endpoint_lists_a_page(scim: Scim) -> None:
    await _okta_user(scim)
    body = (await scim.get("/Users", count=1, startIndex=1)).json()
    assert body["schemas"] == [LIST_SCHEMA]
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (1, 1, 1)
    first = body["Resources"][0]
    assert first["id"] and first["userName"] and first["active"] is True
    assert first["name"]["familyName"] == "Lovelace" and first["name"]["givenName"] == "Ada"
    assert first["emails"][0]["value"] == scim.creds.email("okta")


async def test_r2_unknown_user_name_finds_nobody(scim: Scim) -> None:
    body = (await scim.get("/Users", filter=f'userName eq "{uuid4()}@example.com"')).json()
    assert body["totalResults"] == 0 and body["Resources"] == []


async def test_r3_unknown_id_is_a_scim_404(scim: Scim) -> None:
    scim_error(await scim.get(f"/Users/{uuid4()}"), 404)
    scim_error(await scim.get("/Users/not-a-uuid"), 404)


async def test_r4_create_with_realistic_values(scim: Scim) -> None:
    created = await _okta_user(scim)
    assert created["schemas"] == [USER_SCHEMA]
    assert created["active"] is True and created["userName"] == scim.creds.email("okta")
    assert created["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    assert "password" not in created and "groups" not in created  # never stored, never echoed
    assert created["meta"]["location"].endswith(f"/scim/v2/Users/{created['id']}")


async def test_r5_the_created_user_reads_back(scim: Scim, accord: Accord) -> None:
    created = await _okta_user(scim)
    again = (await scim.get(f"/Users/{created['id']}")).json()
    assert again["userName"] == created["userName"] and again["id"] == created["id"]
    from accord.services import directory

    user = await directory.get_user(accord, created["id"])  # the engine made an accord user
    assert user["email"] == scim.creds.email("okta") and user["full_name"] == "Ada Lovelace"
    assert [m["organization_id"] for m in user["organizations"]] == [str(scim.creds.a)]


async def test_r6_creating_the_same_user_again_is_409_uniqueness(scim: Scim) -> None:
    await _okta_user(scim)
    changed = okta_user(scim.creds.email("okta"), given="Someone", family="Else")
    scim_error(await scim.post("/Users", changed), 409, "uniqueness")
    differently_cased = okta_user(scim.creds.email("okta").upper(), given="Ada", family="L")
    scim_error(await scim.post("/Users", differently_cased), 409, "uniqueness")


async def test_r7_user_name_filter_is_case_insensitive(scim: Scim) -> None:
    created = await _okta_user(scim)
    body = (await scim.get("/Users", filter=f'userName eq "{created["userName"].upper()}"')).json()
    assert [r["id"] for r in body["Resources"]] == [created["id"]]


async def test_r8_deactivate_with_pathless_patch(scim: Scim, accord: Accord) -> None:
    created = await _okta_user(scim)
    ops = [{"op": "replace", "value": {"active": False}}]
    patched = await scim.patch(f"/Users/{created['id']}", ops)
    assert patched.status_code == 200 and patched.json()["active"] is False
    from accord.services import directory

    assert (await directory.get_user(accord, created["id"]))["status"] == "suspended"


async def test_r9_deactivated_user_reads_inactive_and_reactivates(
    scim: Scim, accord: Accord
) -> None:
    created = await _okta_user(scim)
    await scim.patch(f"/Users/{created['id']}", [{"op": "replace", "value": {"active": False}}])
    assert (await scim.get(f"/Users/{created['id']}")).json()["active"] is False
    back = await scim.patch(
        f"/Users/{created['id']}", [{"op": "replace", "value": {"active": True}}]
    )
    assert back.json()["active"] is True
    from accord.services import directory

    assert (await directory.get_user(accord, created["id"]))["status"] != "suspended"


async def test_r10_profile_update_by_put(scim: Scim, accord: Accord) -> None:
    created = await _okta_user(scim)
    body = okta_user(scim.creds.email("okta"), given="Augusta", family="King")
    body["id"] = created["id"]
    replaced = await scim.put(f"/Users/{created['id']}", body)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["name"] == {"givenName": "Augusta", "familyName": "King"}
    from accord.services import directory

    assert (await directory.get_user(accord, created["id"]))["full_name"] == "Augusta King"


async def test_r11_paging_is_stable_and_complete(scim: Scim) -> None:
    made = [(await _okta_user(scim, f"p{i}"))["id"] for i in range(5)]
    seen: list[str] = []
    for start in (1, 3, 5):
        page = (await scim.get("/Users", startIndex=start, count=2)).json()
        assert page["totalResults"] == 5 and page["startIndex"] == start
        seen += [r["id"] for r in page["Resources"]]
    assert seen == made  # oldest first, each once


async def test_r12_okta_never_deletes_but_a_delete_removes_the_user(scim: Scim) -> None:
    created = await _okta_user(scim)
    deleted = await scim.delete(f"/Users/{created['id']}")
    assert deleted.status_code == 204
    scim_error(await scim.get(f"/Users/{created['id']}"), 404)
    assert (await scim.get("/Users", filter=f'userName eq "{created["userName"]}"')).json()[
        "totalResults"
    ] == 0
    # The userName is free again: Okta re-pushes a re-assigned person as a new user.
    assert (await scim.post("/Users", okta_user(created["userName"]))).status_code == 201

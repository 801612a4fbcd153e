"""Finding "the audit trail can be forged" (issue 11). On main 2a4d142 ``X-Acting-User: accord``
(or another tenant's admin) became the event's ``actor`` and the user's ``created_by``,
non-ASCII names were stored as mojibake, and nothing listed the trail. Now the authenticated
principal (the token and its scope) has columns of its own, the header is kept apart as a
validated claim, stored as the UTF-8 that was sent, and ``GET /api/admin/audit-events`` lists
the trail, filtered, in pages, scoped like every read."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from accord.bootstrap import Accord
from accord.services import tokens
from tests.api.conftest import bearer, new_org, problem
from tests.security import verifying_server

settings, http = verifying_server.settings, verifying_server.http


class Tenants:
    """Organizations A and B of one test, a token for each, and a platform token."""

    def __init__(self) -> None:
        self.tag = uuid4().hex[:8]
        self.ids: dict[str, UUID] = {}
        self.tokens: dict[str, str] = {}
        self.token_ids: dict[str, str] = {}

    def email(self, name: str) -> str:
        return f"{name}-{self.tag}@example.com"


@pytest.fixture
async def tenants(accord: Accord) -> Tenants:
    t = Tenants()
    t.ids["a"] = await new_org(accord, f"Audit A {t.tag}")
    t.ids["b"] = await new_org(accord, f"Audit B {t.tag}")
    for name, org in (("a", t.ids["a"]), ("b", t.ids["b"]), ("platform", None)):
        text, record = await tokens.create_token(accord, name=name, organization_id=org)
        t.tokens[name], t.token_ids[name] = text, record["id"]
    return t


async def add_user(
    http: httpx.AsyncClient, t: Tenants, org: str, name: str, acting: bytes | None = None
) -> httpx.Response:
    headers: dict[str, Any] = bearer(t.tokens[org])
    if acting is not None:
        headers["X-Acting-User"] = acting
    return await http.post(
        f"/api/admin/organizations/{t.ids[org]}/users",
        json={"email": t.email(name), "full_name": name.title()},
        headers=headers,
    )


async def rows(accord: Accord, sql: str, **params: Any) -> list[Any]:
    from sqlalchemy import text

    async with accord.db.transaction() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def events(http: httpx.AsyncClient, token: str, **params: Any) -> httpx.Response:
    return await http.get("/api/admin/audit-events", params=params, headers=bearer(token))


@pytest.mark.parametrize("forged", ["accord", "admin@other-tenant.example"])
async def test_a_forged_actor_is_recorded_as_a_claim_next_to_the_principal(
    http: httpx.AsyncClient, accord: Accord, tenants: Tenants, forged: str
) -> None:
    created = await add_user(http, tenants, "a", "ada", forged.encode())
    assert created.status_code == 201, created.text
    user_id = created.json()["user"]["id"]
    token = f"token:{tenants.token_ids['a']}"
    assert created.json()["user"]["created_by"] == token  # the principal, not the claim
    found = await rows(
        accord,
        "SELECT actor, by_kind, by_token_id, by_scope, claimed_actor FROM audit_events "
        "WHERE subject_user_id = :u OR operation_id = :o",
        u=UUID(user_id),
        o=UUID(created.json()["operation_id"]),
    )
    assert found and all(
        (r.actor, r.by_kind, str(r.by_token_id), r.by_scope, r.claimed_actor)
        == (token, "token", tenants.token_ids["a"], str(tenants.ids["a"]), forged)
        for r in found
    )
    stored = await rows(accord, "SELECT created_by FROM users WHERE id = :u", u=UUID(user_id))
    assert stored[0].created_by == token


@pytest.mark.parametrize("name", ["Zoë Ünal", "山田 太郎", "Ἀριστοτέλης", "O'Brien-Łukasz"])
async def test_a_name_in_any_script_is_stored_exactly(
    http: httpx.AsyncClient, accord: Accord, tenants: Tenants, name: str
) -> None:
    created = await add_user(http, tenants, "a", "zoe", name.encode())
    assert created.status_code == 201, created.text
    found = await rows(
        accord,
        "SELECT claimed_actor FROM audit_events WHERE operation_id = :o",
        o=UUID(created.json()["operation_id"]),
    )
    assert {r.claimed_actor for r in found} == {name}
    listed = await events(
        http, tenants.tokens["a"], user_id=created.json()["user"]["id"], action="user.created"
    )
    assert [e["claimed_actor"] for e in listed.json()["items"]] == [name]


@pytest.mark.parametrize(
    "bad",
    [
        "admin\u202eresu".encode(),  # right-to-left override
        "ad\u2067min".encode(),  # right-to-left isolate
        "zero\u200bwidth".encode(),
        b"tab\there",
        ("x" * 201).encode(),
        b"\xff\xfe not utf-8",
        "next\u0085line".encode(),  # a C1 control
        "line\u2028break".encode(),
    ],
)
async def test_an_unprintable_or_overlong_claim_is_refused(
    http: httpx.AsyncClient, accord: Accord, tenants: Tenants, bad: bytes
) -> None:
    before = await rows(accord, "SELECT count(*) AS n FROM audit_events")
    refused = await add_user(http, tenants, "a", "eve", bad)
    body = problem(refused, 400, "invalid_acting_user")
    assert "acting user" in body["detail"].lower() or "X-Acting-User" in body["detail"]
    assert (await rows(accord, "SELECT count(*) AS n FROM audit_events"))[0].n == before[0].n


async def test_the_trail_is_filtered_and_paged_in_a_stable_order(
    http: httpx.AsyncClient, tenants: Tenants
) -> None:
    for name in ("p1", "p2", "p3"):
        assert (await add_user(http, tenants, "a", name)).status_code == 201
    platform = tenants.tokens["platform"]
    everything = await events(http, platform, organization_id=str(tenants.ids["a"]), limit=200)
    assert everything.status_code == 200, everything.text
    items = everything.json()["items"]
    assert everything.json()["next_cursor"] is None
    assert [e["action"] for e in items].count("user.created") == 3
    assert items == sorted(items, key=lambda e: (e["at"], e["id"]))
    walked, cursor = [], None
    while True:
        page = await events(
            http,
            platform,
            organization_id=str(tenants.ids["a"]),
            limit=2,
            **({"cursor": cursor} if cursor else {}),
        )
        assert page.status_code == 200 and len(page.json()["items"]) <= 2
        walked += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert walked == items
    created = await events(
        http, platform, organization_id=str(tenants.ids["a"]), action="user.created"
    )
    assert {e["subject_email"] for e in created.json()["items"]} == {
        tenants.email(n) for n in ("p1", "p2", "p3")
    }
    first = created.json()["items"][0]
    since = await events(
        http, platform, action="user.created", since=first["at"], until=first["at"]
    )
    problem(since, 422, "invalid_input")  # since must be before until
    window = await events(
        http, platform, organization_id=str(tenants.ids["a"]), since=first["at"], limit=200
    )
    assert all(e["at"] >= first["at"] for e in window.json()["items"])
    assert first["principal"] == {
        "kind": "token",
        "token_id": tenants.token_ids["a"],
        "scope": str(tenants.ids["a"]),
        "user_id": None,
        "name": None,
    }


async def test_an_organization_token_sees_only_its_own_organization(
    http: httpx.AsyncClient, tenants: Tenants
) -> None:
    assert (await add_user(http, tenants, "a", "in-a")).status_code == 201
    assert (await add_user(http, tenants, "b", "in-b")).status_code == 201
    mine = await events(http, tenants.tokens["a"], limit=200)
    assert mine.status_code == 200
    assert mine.json()["items"]
    assert {e["organization_id"] for e in mine.json()["items"]} == {str(tenants.ids["a"])}
    # Another tenant's organization answers exactly as an unknown one: an empty page.
    theirs = await events(http, tenants.tokens["a"], organization_id=str(tenants.ids["b"]))
    unknown = await events(http, tenants.tokens["a"], organization_id=str(uuid4()))
    assert theirs.status_code == unknown.status_code == 200
    assert theirs.json() == unknown.json() == {"items": [], "next_cursor": None}
    b_user = (
        await events(
            http,
            tenants.tokens["platform"],
            action="user.created",
            organization_id=str(tenants.ids["b"]),
        )
    ).json()["items"]
    assert b_user
    by_user = await events(http, tenants.tokens["a"], user_id=b_user[0]["subject_user_id"])
    assert by_user.json()["items"] == []
    assert (await events(http, tenants.tokens["platform"])).status_code == 200  # no filter
    platform = await events(http, tenants.tokens["platform"], organization_id=str(tenants.ids["b"]))
    assert {e["subject_email"] for e in platform.json()["items"]} >= {tenants.email("in-b")}


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "bm90LWEtY3Vyc29y"},
        {"cursor": "not a cursor!"},
        {"limit": 201},
        {"limit": 0},
        {"since": "yesterday"},
        {"since": "2026-12-01T10:00:00"},  # no offset: which day is it?
        {"organization_id": "acme"},
    ],
)
async def test_a_bad_cursor_or_filter_is_a_problem(
    http: httpx.AsyncClient, tenants: Tenants, params: dict[str, Any]
) -> None:
    problem(await events(http, tenants.tokens["platform"], **params), 422, "invalid_input")


async def test_the_trail_needs_a_token(http: httpx.AsyncClient) -> None:
    problem(await http.get("/api/admin/audit-events"), 401, "unauthenticated")

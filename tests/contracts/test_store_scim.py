"""The store contract for SCIM rows and SCIM tokens, run against PostgreSQL and the in-memory
store like the rest of ``test_store.py``: one row per userName (case-insensitively) within an
organization, bound once the user exists, listed only while the user is a live member."""

from __future__ import annotations

from uuid import UUID, uuid4

from accord.domain.model import Role, TokenScope
from accord.domain.scim_store import ScimUserWrite
from accord.domain.store import Store
from tests.contracts import test_store

store = test_store.store  # the same fixture: each case on both stores


def write(user_name: str, external_id: str | None = None) -> ScimUserWrite:
    return ScimUserWrite(user_name, external_id, {"displayName": user_name})


async def claimed(store: Store, org_id: UUID, user_name: str, key: str = "k") -> UUID:
    async with store.transaction() as tx:
        row = await tx.scim_users.claim(
            row_id=uuid4(), organization_id=org_id, creation_key=key, write=write(user_name)
        )
    assert row is not None and row.user_id is None
    return row.id


async def test_a_user_name_is_taken_once_per_organization_whatever_its_case(store: Store) -> None:
    acme, other = await test_store.org(store), await test_store.org(store, "other")
    await claimed(store, acme, "Ada@Example.com")
    async with store.transaction() as tx:
        again = await tx.scim_users.claim(
            row_id=uuid4(), organization_id=acme, creation_key="k2", write=write("ada@example.COM")
        )
        assert again is None
        found = await tx.scim_users.by_user_name(acme, "ADA@example.com")
        assert found is not None and found.user_name == "Ada@Example.com"
        assert await tx.scim_users.by_user_name(other, "ada@example.com") is None
    await claimed(store, other, "ada@example.com")  # another tenant has its own names


async def test_a_bound_row_is_listed_while_its_user_is_a_live_member(store: Store) -> None:
    acme = await test_store.org(store)
    first, second = await claimed(store, acme, "first"), await claimed(store, acme, "second")
    ada, bob = await test_store.user(store), await test_store.user(store, "bob@example.com")
    async with store.transaction() as tx:
        assert await tx.scim_users.members(acme) == []  # unbound rows are not users yet
        for row, uid in ((first, ada), (second, bob)):
            await tx.scim_users.bind(row, uid)
            await tx.memberships.put(
                user_id=uid, organization_id=acme, role=Role.ORG_USER, permissions=[]
            )
        assert [r.id for r in await tx.scim_users.members(acme)] == [first, second]
        assert (await tx.scim_users.by_user(acme, ada)).id == first
        await tx.memberships.remove(ada, acme)
        await tx.users.retire(bob)  # deprovisioned
        assert await tx.scim_users.members(acme) == []


async def test_a_rename_to_a_taken_name_is_refused_and_a_free_one_kept(store: Store) -> None:
    acme = await test_store.org(store)
    first = await claimed(store, acme, "first")
    await claimed(store, acme, "second")
    async with store.transaction() as tx:
        assert await tx.scim_users.replace(first, write("SECOND")) is False
        assert await tx.scim_users.replace(first, write("third", "ext-3")) is True
        row = await tx.scim_users.by_user_name(acme, "Third")
        assert row is not None and row.id == first and row.external_id == "ext-3"
        assert row.attributes == {"displayName": "third"}
        await tx.scim_users.delete(first)
        assert await tx.scim_users.by_user_name(acme, "third") is None


async def test_scim_tokens_are_listed_per_organization_and_scope(store: Store) -> None:
    acme = await test_store.org(store)
    async with store.transaction() as tx:
        made = await tx.api_tokens.insert(
            token_id=uuid4(),
            digest="d" * 64,
            name="okta",
            scope=TokenScope.SCIM,
            organization_id=acme,
        )
        await tx.api_tokens.insert(
            token_id=uuid4(),
            digest="e" * 64,
            name="api",
            scope=TokenScope.ORGANIZATION,
            organization_id=acme,
        )
        assert [t.id for t in await tx.api_tokens.list_for(acme, TokenScope.SCIM)] == [made.id]
        assert (await tx.api_tokens.get(made.id)).scope == TokenScope.SCIM
        assert await tx.api_tokens.get(uuid4()) is None

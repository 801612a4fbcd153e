"""The store contract for SCIM groups, run against PostgreSQL and the in-memory store: one
group per displayName (case-insensitively) within an organization, its members written as a
whole and read back in order, listed oldest first, and the grants kept by group name."""

from __future__ import annotations

from uuid import UUID, uuid4

from accord.domain.model import Role
from accord.domain.scim_store import ScimGroupGrant, ScimGroupWrite
from accord.domain.store import Store
from tests.contracts import test_store

store = test_store.store  # the same fixture: each case on both stores


async def made(store: Store, org_id: UUID, name: str, *members: UUID) -> UUID:
    async with store.transaction() as tx:
        group = await tx.scim_groups.create(
            group_id=uuid4(), organization_id=org_id, write=ScimGroupWrite(name, None, members)
        )
    assert group is not None and group.members == members
    return group.id


async def test_a_display_name_is_taken_once_per_organization_whatever_its_case(
    store: Store,
) -> None:
    acme, other = await test_store.org(store), await test_store.org(store, "other")
    first = await made(store, acme, "Engineering")
    async with store.transaction() as tx:
        again = await tx.scim_groups.create(
            group_id=uuid4(), organization_id=acme, write=ScimGroupWrite("ENGINEERING", None, ())
        )
        assert again is None
        found = await tx.scim_groups.by_display_name(acme, "engineering")
        assert found is not None and found.id == first and found.display_name == "Engineering"
        assert await tx.scim_groups.by_display_name(other, "Engineering") is None
        assert await tx.scim_groups.get(other, first) is None  # another tenant's is missing
    await made(store, other, "engineering")  # another tenant has its own names


async def test_members_are_replaced_as_a_whole_and_kept_in_order(store: Store) -> None:
    acme = await test_store.org(store)
    ada, bob = await test_store.user(store), await test_store.user(store, "bob@example.com")
    group = await made(store, acme, "Admins", bob, ada)
    async with store.transaction() as tx:
        assert (await tx.scim_groups.get(acme, group)).members == (bob, ada)
        assert await tx.scim_groups.replace(group, ScimGroupWrite("Admins", "ext-1", (ada,)))
        stored = await tx.scim_groups.get(acme, group)
        assert stored.members == (ada,) and stored.external_id == "ext-1"
        await tx.users.delete(ada)  # a deleted user is no member of anything
        assert (await tx.scim_groups.get(acme, group)).members == ()


async def test_a_dropped_member_leaves_every_group_of_that_organization_only(
    store: Store,
) -> None:
    acme, other = await test_store.org(store), await test_store.org(store, "other")
    ada, bob = await test_store.user(store), await test_store.user(store, "bob@example.com")
    first, second = await made(store, acme, "one", ada, bob), await made(store, acme, "two", ada)
    elsewhere = await made(store, other, "one", ada)
    async with store.transaction() as tx:
        await tx.scim_groups.drop_member(acme, ada)
        assert (await tx.scim_groups.get(acme, first)).members == (bob,)
        assert (await tx.scim_groups.get(acme, second)).members == ()
        assert (await tx.scim_groups.get(other, elsewhere)).members == (ada,)


async def test_groups_list_oldest_first_and_a_rename_to_a_taken_name_is_refused(
    store: Store,
) -> None:
    acme = await test_store.org(store)
    first, second = await made(store, acme, "first"), await made(store, acme, "second")
    async with store.transaction() as tx:
        assert [g.id for g in await tx.scim_groups.list(acme)] == [first, second]
        assert await tx.scim_groups.replace(first, ScimGroupWrite("SECOND", None, ())) is False
        assert await tx.scim_groups.replace(first, ScimGroupWrite("third", None, ())) is True
        assert (await tx.scim_groups.by_display_name(acme, "Third")).id == first
        await tx.scim_groups.delete(first)
        assert [g.id for g in await tx.scim_groups.list(acme)] == [second]


async def test_grants_are_kept_by_name_per_organization(store: Store) -> None:
    acme, other = await test_store.org(store), await test_store.org(store, "other")
    grant = ScimGroupGrant(acme, "Admins", Role.ORG_ADMIN, ("billing",))
    async with store.transaction() as tx:
        await tx.scim_groups.put_grant(grant)
        await tx.scim_groups.put_grant(ScimGroupGrant(acme, "ADMINS", Role.ORG_ADMIN, ("a", "b")))
        found = await tx.scim_groups.grants(acme)
        assert list(found) == ["admins"] and found["admins"].permissions == ("a", "b")
        assert found["admins"].role == Role.ORG_ADMIN
        assert await tx.scim_groups.grants(other) == {}
        assert await tx.scim_groups.remove_grant(acme, "admins") is True
        assert await tx.scim_groups.remove_grant(acme, "admins") is False
        assert await tx.scim_groups.grants(acme) == {}

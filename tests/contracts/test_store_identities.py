"""The store contract for who owns an address and an identity (retired e-mails, removing one
membership, operations that claimed an id for an address), run against PostgreSQL and the
in-memory store like the rest of ``test_store.py``."""

from __future__ import annotations

from uuid import uuid4

from accord.domain.model import Role, UserStatus
from accord.domain.store import Store
from tests.contracts import test_store
from tests.contracts.test_store import operation, org, user

store = test_store.store  # the same fixture: each case on both stores


async def test_retire_frees_the_address_keeps_the_history_and_is_idempotent(
    store: Store,
) -> None:
    ada = await user(store)
    async with store.transaction() as tx:
        await tx.users.retire(ada)
        await tx.users.retire(ada)  # deprovisioned twice: the former address stays
        record = await tx.users.get(ada)
        assert await tx.users.by_email("ada@example.com") is None
        held, placeholder = await tx.users.hold_email("ada@example.com")
        assert held and placeholder is not None  # the address is free
        await tx.users.release_email(placeholder)
    assert record is not None
    assert (record.status, record.email, record.former_email) == (
        UserStatus.DISABLED,
        None,
        "ada@example.com",
    )
    assert [v.user.id for v in await _listed(store)] == [ada]  # still listed, by id


async def _listed(store: Store) -> list:
    async with store.transaction() as tx:
        return await tx.users.list()


async def test_two_retired_rows_of_one_address_and_a_new_one_coexist(store: Store) -> None:
    first = await user(store)
    async with store.transaction() as tx:
        await tx.users.retire(first)
    second = await user(store)
    async with store.transaction() as tx:
        await tx.users.retire(second)
    third = await user(store)
    assert len({first, second, third}) == 3
    async with store.transaction() as tx:
        assert (await tx.users.by_email("ada@example.com")).id == third


async def test_remove_takes_one_membership_only(store: Store) -> None:
    ada, acme, beta = await user(store), await org(store, "acme"), await org(store, "beta")
    async with store.transaction() as tx:
        for place in (acme, beta):
            await tx.memberships.put(
                user_id=ada, organization_id=place, role=Role.ORG_USER, permissions=[]
            )
        assert await tx.memberships.remove(ada, acme) is True
        assert await tx.memberships.remove(ada, acme) is False
        assert await tx.memberships.organizations_of(ada) == [beta]


async def test_claimed_for_knows_the_ids_operations_claimed_for_an_address(store: Store) -> None:
    claimed = uuid4()
    async with store.transaction() as tx:
        op = await tx.operations.insert(operation(key="c1"))
        await tx.operations.advance(op.id, op.recovery_point, user_id=claimed)
        assert await tx.operations.claimed_for(claimed, "ada@example.com") is True
        assert await tx.operations.claimed_for(claimed, "bob@example.com") is False
        assert await tx.operations.claimed_for(uuid4(), "ada@example.com") is False

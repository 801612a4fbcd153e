"""The store's part of an e-mail change (services/profile.py), on PostgreSQL and in memory:
a reservation takes the address's unique index, and a committed change moves the row."""

from __future__ import annotations

import pytest

from accord.domain import errors
from accord.domain.model import UserStatus
from accord.domain.store import Store
from tests.contracts.test_store import store, user

__all__ = ["store"]


async def test_a_reservation_takes_the_address_from_a_claim(store: Store) -> None:
    async with store.transaction() as tx:
        reserved = await tx.users.reserve_email("new@example.com", created_by="change_email")
    assert reserved is not None
    async with store.transaction() as tx:
        held = await tx.users.get(reserved)
        assert held is not None and held.status == UserStatus.PROVISIONING
        assert (
            await tx.users.claim(
                user_id=reserved, email="new@example.com", full_name="N", created_by="t"
            )
            is None
        )
        assert await tx.users.reserve_email("new@example.com", created_by="x") is None


async def test_a_reservation_of_a_used_address_is_refused(store: Store) -> None:
    await user(store, "ada@example.com")
    async with store.transaction() as tx:
        assert await tx.users.reserve_email("ada@example.com", created_by="x") is None


async def test_a_committed_change_moves_the_address_and_grows_the_version(store: Store) -> None:
    ada = await user(store, "ada@example.com")
    async with store.transaction() as tx:
        reserved = await tx.users.reserve_email("ada.l@example.com", created_by="x")
        assert reserved is not None
        before = await tx.users.get(ada)
        await tx.users.delete(reserved)
        await tx.users.update(ada, email="ada.l@example.com", full_name="Ada L.")
    async with store.transaction() as tx:
        after = await tx.users.get(ada)
        assert after is not None and before is not None
        assert (after.email, after.full_name) == ("ada.l@example.com", "Ada L.")
        assert after.version == before.version + 1
        assert await tx.users.by_email("ada@example.com") is None  # the old address is free


async def test_changing_to_a_taken_address_is_email_exists(store: Store) -> None:
    ada = await user(store, "ada@example.com")
    await user(store, "grace@example.com")
    with pytest.raises(errors.EmailAlreadyExists):
        async with store.transaction() as tx:
            await tx.users.update(ada, email="grace@example.com")


async def test_a_reservation_is_no_one_in_the_listings(store: Store) -> None:
    """The row that holds an address for an e-mail change is not a user: no listing, no view,
    no lookup by that address shows it."""
    ada = await user(store, "ada@example.com")
    async with store.transaction() as tx:
        reserved = await tx.users.reserve_email("ada.l@example.com", created_by="x")
        assert reserved is not None
        assert [v.user.id for v in await tx.users.list()] == [ada]
        assert await tx.users.list(email="ada.l@example.com") == []
        assert await tx.users.view(reserved) is None

"""The store contract for pending registrations (e-mail verification links), run against
PostgreSQL and the in-memory store like the rest of ``test_store.py``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from accord.domain import errors
from accord.domain.records import NewVerification
from accord.domain.store import Store
from tests.contracts import test_store

store = test_store.store  # the same fixture: each case on both stores


def verification(email: str = "vera@example.com", *, hours: float = 1.0) -> NewVerification:
    return NewVerification(
        id=uuid4(),
        email=email,
        request={"email": email, "full_name": "Vera"},
        sealed_secrets=b"sealed",
        expires_at=datetime.now(UTC) + timedelta(hours=hours),
    )


async def test_a_verification_link_is_found_by_digest_and_used_once(store: Store) -> None:
    first, second, other = verification(), verification(), verification("ot@example.com")
    async with store.transaction() as tx:
        for new in (first, second, other):
            await tx.verifications.insert(new)
        assert await tx.verifications.find_live("e" * 64) is None  # no link mailed yet
        issued = await tx.verifications.issue_link(first.id, "e" * 64)
        assert issued.email == "vera@example.com" and issued.sealed_secrets == b"sealed"
        assert (await tx.verifications.find_live("e" * 64)).id == first.id
        await tx.verifications.issue_link(first.id, "f" * 64)  # mailed again: a new link
        assert await tx.verifications.find_live("e" * 64) is None
        assert (await tx.verifications.find_live("f" * 64)).request["full_name"] == "Vera"
        await tx.verifications.issue_link(other.id, "0" * 64)
    async with store.transaction() as tx:
        assert await tx.verifications.consume(first.id) is True
        assert await tx.verifications.consume(first.id) is False
        # The address's other pending registration went with it; another address's did not.
        assert await tx.verifications.consume(second.id) is False
        assert await tx.verifications.issue_link(second.id, "1" * 64) is None
        assert (await tx.verifications.find_live("0" * 64)).id == other.id


async def test_an_expired_verification_link_is_dead_and_expires(store: Store) -> None:
    old, fresh = verification(hours=-1), verification("fr@example.com")
    async with store.transaction() as tx:
        await tx.verifications.insert(old)
        await tx.verifications.insert(fresh)
        assert await tx.verifications.issue_link(old.id, "2" * 64) is None
        assert await tx.verifications.consume(old.id) is False
        assert await tx.verifications.expire() == 1
        assert await tx.verifications.consume(fresh.id) is True


async def test_a_verification_consumed_by_a_failed_transaction_stays(store: Store) -> None:
    new = verification()
    async with store.transaction() as tx:
        await tx.verifications.insert(new)
    with pytest.raises(errors.EmailAlreadyExists):
        async with store.transaction() as tx:
            assert await tx.verifications.consume(new.id) is True
            raise errors.EmailAlreadyExists()  # e.g. the claim found the address taken
    async with store.transaction() as tx:
        assert await tx.verifications.consume(new.id) is True

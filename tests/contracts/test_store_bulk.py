"""The store contract, set-wise creation (``BulkCreates``, domain/bulk_store.py; run against
PostgreSQL and the in-memory store): claims left out whole when their e-mail or key is taken,
compare-and-set moves, and finalize's rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from accord.domain.bulk_store import BulkClaim, BulkEnsured, BulkFinish, SetWise
from accord.domain.model import OperationKind, OperationState, RecoveryPoint, Role, UserStatus
from accord.domain.records import NewOperation, OperationRecord
from accord.domain.store import Store, Transaction
from tests.contracts.test_store import org, store, user

__all__ = ["store"]

CALLER = "token:t"


def claim(email: str, org_id: UUID, key: str | None = None) -> BulkClaim:
    now = datetime.now(UTC)
    request = {"email": email, "full_name": email.split("@")[0], "role": "org_user"}
    op = NewOperation(
        id=uuid4(),
        kind=OperationKind.CREATE_USER,
        caller=CALLER,
        idempotency_key=key or f"import:{email}",
        request_digest="d",
        request=request | {"permissions": [], "actor": "test"},
        sealed_secrets=None,
        state=OperationState.OPEN,
        recovery_point=RecoveryPoint.CLAIMED,
        deadline_at=now + timedelta(hours=1),
        lease_until=now + timedelta(minutes=5),
        attempts=1,
    )
    return BulkClaim(op, uuid4(), org_id, email, request["full_name"], "test")


def bulk(tx: Transaction) -> Any:
    assert isinstance(tx, SetWise)
    return tx.bulk


async def get(store: Store, op_id: UUID) -> OperationRecord | None:
    async with store.transaction() as tx:
        return await tx.operations.get(op_id)


async def test_both_stores_create_set_wise(store: Store) -> None:
    async with store.transaction() as tx:
        assert isinstance(tx, SetWise)


async def test_a_claim_writes_rows_and_operations_and_leaves_out_what_is_taken(
    store: Store,
) -> None:
    acme = await org(store)
    await user(store, "taken@example.com")
    first = claim("a@example.com", acme)
    async with store.transaction() as tx:
        assert await bulk(tx).claim([first]) == {first.operation.id}
    again = claim("b@example.com", acme, key=first.operation.idempotency_key)  # the key's taken
    taken = claim("taken@example.com", acme)
    fresh = claim("c@example.com", acme)
    async with store.transaction() as tx:
        assert await bulk(tx).claim([again, taken, fresh]) == {fresh.operation.id}
    async with store.transaction() as tx:
        got = await bulk(tx).taken_emails(
            ["a@example.com", "b@example.com", "c@example.com", "taken@example.com"]
        )
        assert got == {"a@example.com", "c@example.com", "taken@example.com"}  # b not written
        known = await bulk(tx).known(CALLER, ["import:a@example.com", "import:nobody"])
        assert list(known) == ["import:a@example.com"]
        assert (known["import:a@example.com"].id, known["import:a@example.com"].state) == (
            first.operation.id,
            "open",
        )
        assert await bulk(tx).known("token:other", ["import:a@example.com"]) == {}
        row = await tx.users.get(fresh.user_id)
        assert row is not None and row.status == UserStatus.PROVISIONING
        assert await tx.operations.count_open_claims(acme) == 2
    op = await get(store, fresh.operation.id)
    assert op is not None
    assert (op.user_id, op.organization_id, op.recovery_point) == (
        fresh.user_id,
        acme,
        RecoveryPoint.CLAIMED,
    )
    assert op.lease_until is not None and op.attempts == 1


async def test_unclaim_takes_back_operations_and_rows_and_release_gives_leases_back(
    store: Store,
) -> None:
    acme = await org(store)
    one, two = claim("a@example.com", acme), claim("b@example.com", acme)
    async with store.transaction() as tx:
        await bulk(tx).claim([one, two])
        await bulk(tx).unclaim([two.operation.id])
    async with store.transaction() as tx:
        assert await tx.users.get(two.user_id) is None
        assert await tx.operations.get(two.operation.id) is None
        await bulk(tx).release([one.operation.id])
    op = await get(store, one.operation.id)
    assert op is not None and op.lease_until is None and op.attempts == 0
    assert op.state == OperationState.OPEN


async def test_ensured_and_lock_ensured_are_compare_and_set(store: Store) -> None:
    acme = await org(store)
    one, two = claim("a@example.com", acme), claim("b@example.com", acme)
    async with store.transaction() as tx:
        await bulk(tx).claim([one, two])
    answer = BulkEnsured(one.operation.id, "r-1", True, {"identity": "created"})
    async with store.transaction() as tx:
        [moved] = await bulk(tx).ensured([answer])
        assert (moved.id, moved.recovery_point, moved.remote_id) == (
            one.operation.id,
            RecoveryPoint.IDP_ENSURED,
            "r-1",
        )
        assert moved.created_remote is True and moved.flow_state == {"identity": "created"}
    async with store.transaction() as tx:
        assert await bulk(tx).ensured([answer]) == []  # moved already
        locked = await bulk(tx).lock_ensured([moved, two.operation])
        assert locked == [moved]  # two is still at claimed


async def test_finalize_links_joins_and_finishes(store: Store) -> None:
    acme = await org(store)
    c = claim("a@example.com", acme)
    async with store.transaction() as tx:
        await bulk(tx).claim([c])
        [op] = await bulk(tx).ensured([BulkEnsured(c.operation.id, "r-1", True, {})])
    mail = {
        "kind": "invitation",
        "dedupe_key": f"invitation:{op.id}",
        "recipient": "a@example.com",
        "payload": {"user_id": str(c.user_id)},
    }
    item = BulkFinish(
        operation=op,
        provider="local",
        created_by_accord=True,
        status=UserStatus.PENDING,
        role=Role.ORG_USER,
        permissions=("dashboard",),
        result={"operation_id": str(op.id)},
        invitation=mail,
    )
    async with store.transaction() as tx:
        await bulk(tx).link_and_join([item])
        [view] = await bulk(tx).views([c.user_id, uuid4()])  # one unknown: left out
        assert view.user.status == UserStatus.PENDING and view.user.full_name == "a"
        assert [(m.organization_id, m.role, m.permissions) for m in view.memberships] == [
            (acme, Role.ORG_USER, ("dashboard",))
        ]
        await bulk(tx).finish([item])
    async with store.transaction() as tx:
        await bulk(tx).finish([item])  # finished already: nothing moves, no second mail
        link = await tx.links.get(c.user_id, "local")
        assert link is not None and (link.remote_id, link.created_by_accord) == ("r-1", True)
        assert await tx.links.holder("local", "r-1") == c.user_id
        sent = await tx.outbox.lease_due(limit=10, lease_seconds=60)
        assert [(m.kind, m.recipient) for m in sent] == [("invitation", "a@example.com")]
    done = await get(store, op.id)
    assert done is not None
    assert (done.state, done.recovery_point, done.lease_until) == (
        OperationState.SUCCEEDED,
        RecoveryPoint.FINISHED,
        None,
    )
    assert done.result == {"operation_id": str(op.id)}


async def test_holders_name_the_users_linked_to_identities(store: Store) -> None:
    ada, bob = await user(store), await user(store, "bob@example.com")
    async with store.transaction() as tx:
        await tx.links.link(user_id=ada, provider="p", remote_id="r-1", created_by_accord=True)
        await tx.links.link(user_id=bob, provider="q", remote_id="r-2", created_by_accord=True)
        assert await bulk(tx).holders("p", ["r-1", "r-2", "r-3"]) == {"r-1": ada}
        assert await bulk(tx).holders("p", []) == {}

"""The store contract, housekeeping: finished operations and old audit events are deleted in
bounded batches, open operations never (run against PostgreSQL and the in-memory store)."""

from __future__ import annotations

from dataclasses import replace

from accord.domain.model import OperationState, RecoveryPoint
from accord.domain.records import AuditEvent
from accord.domain.store import Store
from tests.contracts.test_store import operation, store

__all__ = ["store"]


async def test_finished_operations_past_their_lifetime_go_in_batches(store: Store) -> None:
    async with store.transaction() as tx:
        for state in (OperationState.SUCCEEDED, OperationState.FAILED, OperationState.FAILED):
            done = replace(operation(None), state=state, recovery_point=RecoveryPoint.FINISHED)
            await tx.operations.insert(done)
        still_open = await tx.operations.insert(operation("open"))
    async with store.transaction() as tx:
        assert await tx.operations.delete_finished(1.0, limit=10) == 0  # younger than an hour
        assert await tx.operations.delete_finished(0.0, limit=2) == 2
        assert await tx.operations.delete_finished(0.0, limit=2) == 1
        assert await tx.operations.delete_finished(0.0, limit=2) == 0
        assert await tx.operations.get(still_open.id) is not None


async def test_audit_events_past_their_retention_go_oldest_first(store: Store) -> None:
    async with store.transaction() as tx:
        for i in range(3):
            await tx.audit.record(AuditEvent(actor="t", action=f"a.{i}"))
    async with store.transaction() as tx:
        assert await tx.audit.delete_older_than(1.0, limit=10) == 0  # younger than a day
        assert await tx.audit.delete_older_than(0.0, limit=2) == 2
        assert await tx.audit.delete_older_than(0.0, limit=2) == 1

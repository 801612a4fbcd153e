"""SQL for the operations table: the durable record of every provisioning operation.

Transitions are compare-and-set on ``recovery_point`` under a row lock, so two runners of one
operation (a client's retry and the worker, say) can never both commit the same phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.tables import operations
from accord.domain.model import OperationKind, OperationState, RecoveryPoint


@dataclass(frozen=True)
class OperationRecord:
    """One row of ``operations``."""

    id: UUID
    kind: OperationKind
    caller: str
    idempotency_key: str | None
    request_digest: str
    request: dict[str, Any]
    sealed_secrets: bytes | None
    flow_state: dict[str, Any]
    state: OperationState
    recovery_point: RecoveryPoint
    user_id: UUID | None
    organization_id: UUID | None
    remote_id: str | None
    created_remote: bool | None
    attempts: int
    next_attempt_at: datetime | None
    lease_until: datetime | None
    deadline_at: datetime
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    @property
    def is_terminal(self) -> bool:
        return self.state != OperationState.OPEN


def _record(row: Any) -> OperationRecord:
    values = dict(row._mapping)
    values["kind"] = OperationKind(values["kind"])
    values["state"] = OperationState(values["state"])
    values["recovery_point"] = RecoveryPoint(values["recovery_point"])
    return OperationRecord(**values)


async def insert_operation(conn: AsyncConnection, **values: Any) -> OperationRecord:
    row = (await conn.execute(insert(operations).values(**values).returning(*operations.c))).one()
    return _record(row)


async def find_by_key(conn: AsyncConnection, caller: str, key: str) -> OperationRecord | None:
    query = select(operations).where(
        operations.c.caller == caller, operations.c.idempotency_key == key
    )
    row = (await conn.execute(query)).first()
    return _record(row) if row else None


async def get(
    conn: AsyncConnection, operation_id: UUID, *, lock: bool = False
) -> OperationRecord | None:
    query = select(operations).where(operations.c.id == operation_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return _record(row) if row else None


async def take_lease(
    conn: AsyncConnection, operation_id: UUID, lease_seconds: float
) -> OperationRecord | None:
    """Lease an open operation nobody is running; None if it is leased or terminal."""
    row = (
        await conn.execute(
            update(operations)
            .where(
                operations.c.id == operation_id,
                operations.c.state == OperationState.OPEN,
                (operations.c.lease_until.is_(None)) | (operations.c.lease_until < func.now()),
            )
            .values(
                lease_until=func.now() + text(f"interval '{float(lease_seconds)} seconds'"),
                attempts=operations.c.attempts + 1,
                updated_at=func.now(),
            )
            .returning(*operations.c)
        )
    ).first()
    return _record(row) if row else None


async def advance(
    conn: AsyncConnection,
    operation_id: UUID,
    expected: RecoveryPoint | tuple[RecoveryPoint, ...],
    **values: Any,
) -> OperationRecord | None:
    """Move an open operation on from ``expected``; None if another runner moved it first."""
    allowed = (expected,) if isinstance(expected, RecoveryPoint) else expected
    row = (
        await conn.execute(
            update(operations)
            .where(
                operations.c.id == operation_id,
                operations.c.state == OperationState.OPEN,
                operations.c.recovery_point.in_([str(p) for p in allowed]),
            )
            .values(updated_at=func.now(), **values)
            .returning(*operations.c)
        )
    ).first()
    return _record(row) if row else None


async def count_open_claims(conn: AsyncConnection, organization_id: UUID) -> int:
    """Open operations that will add a member to ``organization_id`` (G5 counts them)."""
    query = (
        select(func.count())
        .select_from(operations)
        .where(
            operations.c.organization_id == organization_id,
            operations.c.state == OperationState.OPEN,
            operations.c.kind == OperationKind.CREATE_USER,
            operations.c.recovery_point != RecoveryPoint.COMPENSATING,
        )
    )
    return (await conn.execute(query)).scalar_one()


async def open_operation_for_user(conn: AsyncConnection, user_id: UUID) -> OperationRecord | None:
    query = select(operations).where(
        operations.c.user_id == user_id, operations.c.state == OperationState.OPEN
    )
    row = (await conn.execute(query.limit(1))).first()
    return _record(row) if row else None


async def lease_due(
    conn: AsyncConnection, *, limit: int, lease_seconds: float
) -> list[OperationRecord]:
    """Lease up to ``limit`` open operations that nobody runs and whose retry time has come.

    ``FOR UPDATE SKIP LOCKED`` lets any number of workers share the queue: each row goes to one.
    """
    due = (
        select(operations.c.id)
        .where(
            operations.c.state == OperationState.OPEN,
            (operations.c.lease_until.is_(None)) | (operations.c.lease_until < func.now()),
            (operations.c.next_attempt_at.is_(None)) | (operations.c.next_attempt_at <= func.now()),
        )
        .order_by(operations.c.next_attempt_at.asc().nulls_first())
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = await conn.execute(
        update(operations)
        .where(operations.c.id.in_(due))
        .values(
            lease_until=func.now() + text(f"interval '{float(lease_seconds)} seconds'"),
            attempts=operations.c.attempts + 1,
            updated_at=func.now(),
        )
        .returning(*operations.c)
    )
    return [_record(row) for row in rows]


async def release_lease(conn: AsyncConnection, operation_id: UUID) -> None:
    """Give an operation back to the queue at once (a worker shutting down)."""
    await conn.execute(
        update(operations)
        .where(operations.c.id == operation_id, operations.c.state == OperationState.OPEN)
        .values(lease_until=None, attempts=operations.c.attempts - 1)
    )


async def forget_idempotency(conn: AsyncConnection, older_than_hours: float) -> int:
    """Past their lifetime, finished operations stop answering for their key; the record (and
    the audit trail) stays, without its sealed secrets."""
    result = await conn.execute(
        update(operations)
        .where(
            operations.c.state != OperationState.OPEN,
            operations.c.updated_at
            < func.now() - text(f"interval '{float(older_than_hours)} hours'"),
            (operations.c.idempotency_key.is_not(None))
            | (operations.c.sealed_secrets.is_not(None)),
        )
        .values(idempotency_key=None, sealed_secrets=None)
    )
    return result.rowcount

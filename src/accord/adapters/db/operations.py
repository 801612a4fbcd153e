"""SQL for the operations table: the durable record of every provisioning operation.

Transitions are compare-and-set on ``recovery_point`` under a row lock, so two runners of one
operation (a client's retry and the worker, say) can never both commit the same phase.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ARRAY,
    Interval,
    Text,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import Unpack

from accord.adapters.db.direct import Direct, mapping
from accord.adapters.db.sql import lease_rows, row_values, seconds_ago, seconds_from_now
from accord.adapters.db.tables import operations
from accord.adapters.db.work_signal import WorkNotice
from accord.domain.model import OperationKind, OperationState, RecoveryPoint
from accord.domain.records import NewOperation, OperationRecord
from accord.domain.store import OperationChanges


def _record(row: Any) -> OperationRecord:
    values = dict(mapping(row))
    values["kind"] = OperationKind(values["kind"])
    values["state"] = OperationState(values["state"])
    values["recovery_point"] = RecoveryPoint(values["recovery_point"])
    return OperationRecord(**values)


# Written into the SQL rather than bound: the partial indexes ``WHERE state = 'open'``
# (ix_operations_open, ix_operations_open_organization) then serve the generic plan that
# PostgreSQL may cache for a prepared statement too; with a parameter there, the planner
# cannot know it is 'open' and reads the whole table.
_OPEN = operations.c.state == literal_column(f"'{OperationState.OPEN.value}'")
_UNLEASED = (operations.c.lease_until.is_(None)) | (operations.c.lease_until < func.now())


def open_claims(organization_id: Any) -> Any:
    """The number of open user creations holding a place in the organization (not those
    being undone), as a scalar subquery (the id a value or a ``bindparam``)."""
    return (
        select(func.count())
        .select_from(operations)
        .where(
            operations.c.organization_id == organization_id,
            _OPEN,  # ix_operations_open_organization
            operations.c.kind == OperationKind.CREATE_USER,
            operations.c.recovery_point != RecoveryPoint.COMPENSATING,
        )
        .scalar_subquery()
    )


# The hot path's statements, built once and run on psycopg directly (issue 12: ``Direct``).
# WHERE parameters are named ``w_*`` so that they never collide with the SET clause's column
# names.
_BY_ID = operations.c.id == bindparam("w_id")
_INSERT = Direct(insert(operations).returning(*operations.c))
_SELECT_BY_ID = select(operations).where(_BY_ID)
_GET = Direct(_SELECT_BY_ID)
_GET_LOCKED = Direct(_SELECT_BY_ID.with_for_update())
_FIND_BY_KEY = Direct(
    select(operations).where(
        operations.c.caller == bindparam("w_caller"),
        operations.c.idempotency_key == bindparam("w_key"),
    )
)
_TAKE_LEASE = Direct(
    update(operations)
    .where(_BY_ID, _OPEN, _UNLEASED)
    .values(
        lease_until=func.now() + bindparam("w_lease", type_=Interval()),
        attempts=operations.c.attempts + 1,
        updated_at=func.now(),
    )
    .returning(*operations.c)
)
_ADVANCE = Direct(
    update(operations)
    .where(
        _BY_ID,
        _OPEN,
        operations.c.recovery_point == any_(bindparam("w_allowed", type_=ARRAY(Text))),
    )
    .values(updated_at=func.now())
    .returning(*operations.c)
)
_OPEN_FOR_USER = Direct(
    select(operations).where(operations.c.user_id == bindparam("w_user_id"), _OPEN).limit(1)
)


class PgOperations:
    """``Operations`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection, work: WorkNotice | None = None) -> None:
        self._conn = conn
        self._work = work or WorkNotice()

    async def _one(self, statement: Direct, params: dict[str, Any]) -> OperationRecord | None:
        row = await statement.first(self._conn, params)
        return _record(row) if row else None

    async def insert(self, new: NewOperation) -> OperationRecord:
        record = await self._one(_INSERT, row_values(new))
        assert record is not None  # an INSERT … RETURNING returns its row
        return record

    async def get(self, operation_id: UUID, *, lock: bool = False) -> OperationRecord | None:
        return await self._one(_GET_LOCKED if lock else _GET, {"w_id": operation_id})

    async def find_by_key(self, caller: str, key: str) -> OperationRecord | None:
        return await self._one(_FIND_BY_KEY, {"w_caller": caller, "w_key": key})

    async def take_lease(self, operation_id: UUID, lease_seconds: float) -> OperationRecord | None:
        lease = timedelta(seconds=float(lease_seconds))
        return await self._one(_TAKE_LEASE, {"w_id": operation_id, "w_lease": lease})

    async def advance(
        self,
        operation_id: UUID,
        expected: RecoveryPoint | tuple[RecoveryPoint, ...],
        **changes: Unpack[OperationChanges],
    ) -> OperationRecord | None:
        allowed = (expected,) if isinstance(expected, RecoveryPoint) else expected
        if _left_for_a_worker(changes):
            self._work.mark()
        params: dict[str, Any] = {
            "w_id": operation_id,
            "w_allowed": [str(p) for p in allowed],
            **changes,
        }
        return await self._one(_ADVANCE, params)

    async def count_open_claims(self, organization_id: UUID) -> int:
        return (await self._conn.execute(select(open_claims(organization_id)))).scalar_one()

    async def open_for_user(self, user_id: UUID) -> OperationRecord | None:
        return await self._one(_OPEN_FOR_USER, {"w_user_id": user_id})

    async def claimed_for(self, user_id: UUID, email: str) -> bool:
        query = select(
            select(operations.c.id)
            .where(
                operations.c.user_id == user_id,
                operations.c.kind.in_(("create_user", "register")),
                operations.c.request["email"].astext == email,
            )
            .exists()
        )
        return bool((await self._conn.execute(query)).scalar())

    async def open_touching(self, *, user_id: UUID | str | None, email: str | None) -> UUID | None:
        conditions = []
        subject = _uuid_or_none(user_id)
        if subject is not None:
            conditions.append(operations.c.user_id == subject)
        if email:
            conditions.append(operations.c.request["email"].astext == email)
            conditions.append(operations.c.flow_state["email"].astext == email)
        if not conditions:
            return None
        query = select(operations.c.id).where(_OPEN, or_(*conditions)).limit(1)
        return (await self._conn.execute(query)).scalar_one_or_none()

    async def lease_due(self, *, limit: int, lease_seconds: float) -> list[OperationRecord]:
        due = (
            _OPEN
            & _UNLEASED
            & (
                operations.c.next_attempt_at.is_(None)
                | (operations.c.next_attempt_at <= func.now())
            )
        )
        rows = await lease_rows(
            self._conn,
            operations,
            due=due,
            order_by=operations.c.next_attempt_at.asc().nulls_first(),
            limit=limit,
            values=_leased(lease_seconds),
        )
        return [_record(row) for row in rows]

    async def release_lease(self, operation_id: UUID) -> None:
        # No notice: the process giving it back (a wrong key) would only wake itself again.
        await self._conn.execute(
            update(operations)
            .where(operations.c.id == operation_id, _OPEN)
            .values(lease_until=None, attempts=operations.c.attempts - 1)
        )

    async def due_in(self) -> float | None:
        due_at = func.greatest(
            func.coalesce(operations.c.next_attempt_at, func.now()),
            func.coalesce(operations.c.lease_until, func.now()),
        )
        query = select(func.extract("epoch", func.min(due_at) - func.now())).where(_OPEN)
        seconds = (await self._conn.execute(query)).scalar()
        return None if seconds is None else float(seconds)

    async def forget_idempotency(self, older_than_hours: float) -> int:
        """The record (and the audit trail) stays, without its key and sealed secrets."""
        result = await self._conn.execute(
            update(operations)
            .where(
                operations.c.state != OperationState.OPEN,
                operations.c.updated_at < seconds_ago(older_than_hours * 3600),
                (operations.c.idempotency_key.is_not(None))
                | (operations.c.sealed_secrets.is_not(None)),
            )
            .values(idempotency_key=None, sealed_secrets=None)
        )
        return result.rowcount

    async def delete_finished(self, older_than_hours: float, *, limit: int) -> int:
        old = (
            select(operations.c.id)
            .where(
                operations.c.state != OperationState.OPEN,
                operations.c.updated_at < seconds_ago(older_than_hours * 3600),
            )
            .limit(limit)
            .scalar_subquery()
        )
        result = await self._conn.execute(delete(operations).where(operations.c.id.in_(old)))
        return result.rowcount

    async def open_by_kind(self) -> dict[str, int]:
        query = select(operations.c.kind, func.count()).where(_OPEN).group_by(operations.c.kind)
        return {kind: count for kind, count in (await self._conn.execute(query)).all()}


def _leased(lease_seconds: float) -> dict[str, Any]:
    return {
        "lease_until": seconds_from_now(lease_seconds),
        "attempts": operations.c.attempts + 1,
        "updated_at": func.now(),
    }


def _left_for_a_worker(changes: OperationChanges) -> bool:
    """Whether these changes give an open operation's lease back (a retry scheduled)."""
    released = "lease_until" in changes and changes["lease_until"] is None
    return released and changes.get("state", OperationState.OPEN) == OperationState.OPEN


def _uuid_or_none(value: UUID | str | None) -> UUID | None:
    try:
        return UUID(str(value)) if value is not None else None
    except ValueError:
        return None  # an IdP's stamp that is not one of accord's ids

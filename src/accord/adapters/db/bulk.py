"""SQL for set-wise user creation (``BulkCreates``, domain/bulk_store.py): the rows the per-row
engine writes, a batch to a statement (a multi-row insert, or one executemany round trip)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.operations import _record
from accord.adapters.db.tables import idp_links, memberships, operations, outbox, users
from accord.adapters.db.users import PgUsers
from accord.adapters.db.work_signal import WorkNotice
from accord.domain.bulk_store import BulkClaim, BulkEnsured, BulkFinish, KnownKey
from accord.domain.model import OperationState, RecoveryPoint, UserStatus
from accord.domain.records import OperationRecord, UserView

o = operations.c
_OPEN = o.state == OperationState.OPEN


class PgBulk:
    """``BulkCreates`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection, work: WorkNotice | None = None) -> None:
        self._conn = conn
        self._work = work or WorkNotice()

    async def known(self, caller: str, keys: Sequence[str]) -> dict[str, KnownKey]:
        if not keys:
            return {}
        query = select(o.idempotency_key, o.id, o.state, o.request_digest, o.result).where(
            o.caller == caller, o.idempotency_key.in_(list(keys))
        )
        rows = await self._conn.execute(query)
        return {
            r.idempotency_key: KnownKey(r.id, r.state, r.request_digest, r.result) for r in rows
        }

    async def taken_emails(self, emails: Sequence[str]) -> set[str]:
        if not emails:
            return set()
        query = select(users.c.email).where(users.c.email.in_(list(emails)))
        return set((await self._conn.execute(query)).scalars())

    async def claim(self, claims: Sequence[BulkClaim]) -> set[UUID]:
        if not claims:
            return set()
        # E-mails in one order for every writer: two batches wait for each other, never in a
        # cycle (the seat lock comes after, as in the per-row claim).
        ordered = sorted(claims, key=lambda c: c.email)
        rows = [
            {
                "id": c.user_id,
                "email": c.email,
                "full_name": c.full_name,
                "status": UserStatus.PROVISIONING,
                "created_by": c.created_by,
            }
            for c in ordered
        ]
        statement = (
            pg_insert(users)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[users.c.email])
            .returning(users.c.id)
        )
        got_rows = set((await self._conn.execute(statement)).scalars())
        mine = [c for c in ordered if c.user_id in got_rows]
        if not mine:
            return set()
        new_ops = [
            {
                **asdict(c.operation),
                "user_id": c.user_id,
                "organization_id": c.organization_id,
                "flow_state": {},
            }
            for c in mine
        ]
        statement = pg_insert(operations).values(new_ops).on_conflict_do_nothing().returning(o.id)
        got_ops = set((await self._conn.execute(statement)).scalars())
        lost = [c.user_id for c in mine if c.operation.id not in got_ops]
        if lost:  # the key's operation exists (a concurrent run): give its row back
            await self._conn.execute(delete(users).where(users.c.id.in_(lost)))
        return got_ops

    async def unclaim(self, operation_ids: Sequence[UUID]) -> None:
        if not operation_ids:
            return
        gone = await self._conn.execute(
            delete(operations).where(o.id.in_(list(operation_ids))).returning(o.user_id)
        )
        user_ids = list(gone.scalars())
        if user_ids:
            await self._conn.execute(delete(users).where(users.c.id.in_(user_ids)))

    async def release(self, operation_ids: Sequence[UUID]) -> None:
        if not operation_ids:
            return
        await self._conn.execute(
            update(operations)
            .where(o.id.in_(list(operation_ids)), _OPEN)
            .values(lease_until=None, attempts=o.attempts - 1)
        )

    async def ensured(self, answers: Sequence[BulkEnsured]) -> list[OperationRecord]:
        if not answers:
            return []
        ids = [a.operation_id for a in answers]
        locked = select(o.id).where(o.id.in_(ids), _OPEN, o.recovery_point == RecoveryPoint.CLAIMED)
        movable = set((await self._conn.execute(locked.with_for_update())).scalars())
        rows = [
            {
                "oid": a.operation_id,
                "remote": a.remote_id,
                "created": a.created_remote,
                "flow": a.flow_state,
            }
            for a in answers
            if a.operation_id in movable
        ]
        if not rows:
            return []
        await self._conn.execute(
            update(operations)
            .where(o.id == bindparam("oid"))
            .values(
                recovery_point=RecoveryPoint.IDP_ENSURED,
                remote_id=bindparam("remote"),
                created_remote=bindparam("created"),
                flow_state=bindparam("flow", type_=operations.c.flow_state.type),
                updated_at=func.now(),
            ),
            rows,
        )
        return await self._records([r["oid"] for r in rows])

    async def lock_ensured(self, operation_ids: Sequence[UUID]) -> list[OperationRecord]:
        if not operation_ids:
            return []
        query = (
            select(operations)
            .where(
                o.id.in_(list(operation_ids)), _OPEN, o.recovery_point == RecoveryPoint.IDP_ENSURED
            )
            .order_by(o.id)
            .with_for_update()
        )
        return [_record(row) for row in await self._conn.execute(query)]

    async def _records(self, ids: Sequence[UUID]) -> list[OperationRecord]:
        query = select(operations).where(o.id.in_(list(ids)))
        found = {row.id: _record(row) for row in await self._conn.execute(query)}
        return [found[i] for i in ids if i in found]

    async def link_and_join(self, items: Sequence[BulkFinish]) -> None:
        if not items:
            return
        links = [
            {
                "user_id": i.operation.user_id,
                "provider": i.provider,
                "remote_id": i.operation.remote_id,
                "created_by_accord": i.created_by_accord,
            }
            for i in items
        ]
        statement = pg_insert(idp_links).values(links)
        await self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=[idp_links.c.user_id, idp_links.c.provider],
                set_={
                    "remote_id": statement.excluded.remote_id,
                    "created_by_accord": statement.excluded.created_by_accord,
                },
            )
        )
        await self._conn.execute(
            update(users)
            .where(users.c.id == bindparam("uid"))
            .values(
                status=bindparam("status"),
                full_name=bindparam("name"),
                require_password_change=False,
                version=users.c.version + 1,
                updated_at=func.now(),
            ),
            [_user_changes(i) for i in items],
        )
        joins = [
            {
                "user_id": i.operation.user_id,
                "organization_id": i.operation.organization_id,
                "role": str(i.role),
                "permissions": list(i.permissions),
            }
            for i in items
        ]
        joined = pg_insert(memberships).values(joins)
        await self._conn.execute(
            joined.on_conflict_do_update(
                index_elements=[memberships.c.user_id, memberships.c.organization_id],
                set_={"role": joined.excluded.role, "permissions": joined.excluded.permissions},
            )
        )

    async def views(self, user_ids: Sequence[UUID]) -> list[UserView]:
        return await PgUsers(self._conn).views(user_ids)

    async def finish(self, items: Sequence[BulkFinish]) -> None:
        if not items:
            return
        mails = [i.invitation for i in items if i.invitation is not None]
        if mails:
            self._work.mark()  # a worker sends them
            await self._conn.execute(
                pg_insert(outbox)
                .values(mails)
                .on_conflict_do_nothing(index_elements=[outbox.c.dedupe_key])
            )
        await self._conn.execute(
            update(operations)
            .where(o.id == bindparam("oid"), _OPEN, o.recovery_point == RecoveryPoint.IDP_ENSURED)
            .values(
                recovery_point=RecoveryPoint.FINISHED,
                state=OperationState.SUCCEEDED,
                result=bindparam("res", type_=operations.c.result.type),
                lease_until=None,
                error=None,
                updated_at=func.now(),
            ),
            [{"oid": i.operation.id, "res": i.result} for i in items],
        )


def _user_changes(item: BulkFinish) -> dict[str, Any]:
    return {
        "uid": item.operation.user_id,
        "status": str(item.status),
        "name": item.operation.request["full_name"],
    }

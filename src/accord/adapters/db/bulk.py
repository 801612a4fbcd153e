"""SQL for set-wise user creation (``BulkCreates``, domain/bulk_store.py): the rows the per-row
engine writes, a batch to a statement: one array per column, unnested (short statements that
are prepared once), or for the upserts of links and memberships an executemany."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.operations import _OPEN, _record
from accord.adapters.db.tables import idp_links, memberships, operations, outbox, users
from accord.adapters.db.users import PgUsers
from accord.adapters.db.work_signal import WorkNotice
from accord.domain.bulk_store import BulkClaim, BulkEnsured, BulkFinish, KnownKey
from accord.domain.model import OperationState, RecoveryPoint, UserStatus
from accord.domain.records import OperationRecord, UserView

o = operations.c

# One parameter per column (arrays, unnested): a short statement that psycopg and the server
# prepare once, whatever the batch's size; multi-row VALUES would be parsed anew every time.
_CLAIM_USERS = text(
    """
    INSERT INTO users (id, email, full_name, status, created_by)
    SELECT u.id, u.email, u.full_name, :status, u.created_by
    FROM unnest(CAST(:ids AS uuid[]), CAST(:emails AS text[]), CAST(:names AS text[]),
                CAST(:by AS text[])) AS u(id, email, full_name, created_by)
    ON CONFLICT (email) DO NOTHING
    RETURNING id
    """
)
_CLAIM_OPERATIONS = text(
    """
    INSERT INTO operations (id, kind, caller, idempotency_key, request_digest, request,
        state, recovery_point, deadline_at, lease_until, attempts, user_id, organization_id,
        flow_state)
    SELECT v.id, v.kind, v.caller, v.key, v.digest, CAST(v.request AS jsonb), v.state,
        v.point, v.deadline, v.lease, v.attempts, v.user_id, v.org_id, '{}'::jsonb
    FROM unnest(CAST(:id AS uuid[]), CAST(:kind AS text[]), CAST(:caller AS text[]),
                CAST(:key AS text[]), CAST(:digest AS text[]), CAST(:request AS text[]),
                CAST(:state AS text[]), CAST(:point AS text[]),
                CAST(:deadline AS timestamptz[]), CAST(:lease AS timestamptz[]),
                CAST(:attempts AS int[]), CAST(:user_id AS uuid[]), CAST(:org_id AS uuid[]))
        AS v(id, kind, caller, key, digest, request, state, point, deadline, lease, attempts,
             user_id, org_id)
    ON CONFLICT DO NOTHING
    RETURNING id
    """
)
_ENSURED = text(
    """
    UPDATE operations o SET recovery_point = :point, remote_id = v.remote_id,
        created_remote = v.created, flow_state = CAST(v.flow AS jsonb), updated_at = now()
    FROM unnest(CAST(:ids AS uuid[]), CAST(:remote AS text[]), CAST(:created AS boolean[]),
                CAST(:flow AS text[])) AS v(id, remote_id, created, flow)
    WHERE o.id = v.id AND o.state = 'open' AND o.recovery_point = :expected
    RETURNING o.*
    """
)
_USERS_JOINED = text(
    """
    UPDATE users u SET status = v.status, full_name = v.full_name,
        require_password_change = false, version = u.version + 1, updated_at = now()
    FROM unnest(CAST(:ids AS uuid[]), CAST(:status AS text[]), CAST(:names AS text[]))
        AS v(id, status, full_name)
    WHERE u.id = v.id
    """
)
_SUCCEEDED = text(
    """
    UPDATE operations o SET recovery_point = :finished, state = :succeeded,
        result = CAST(v.result AS jsonb), lease_until = NULL, error = NULL, updated_at = now()
    FROM unnest(CAST(:ids AS uuid[]), CAST(:results AS text[])) AS v(id, result)
    WHERE o.id = v.id AND o.state = 'open' AND o.recovery_point = :expected
    """
)


# A batch's keys and e-mails as a joined array, not ``IN (...)``: one index lookup per element
# in every plan. The IN list's generic plan (psycopg prepares a statement from its fifth run)
# was made while the tables were small, and kept scanning all of ``operations`` as it grew:
# 0.5 s a batch at 40,000 operations, most of a rerun's time.
_KNOWN = text(
    """
    SELECT o.idempotency_key, o.id, o.state, o.request_digest, o.result
    FROM unnest(CAST(:keys AS text[])) AS k(key)
    JOIN operations o ON o.caller = :caller AND o.idempotency_key = k.key
    """
)
_HOLDERS = text(
    """
    SELECT l.remote_id, l.user_id FROM unnest(CAST(:remote AS text[])) AS r(remote_id)
    JOIN idp_links l ON l.provider = :provider AND l.remote_id = r.remote_id
    """
)
# Joined, not ``IN (...)``: a batch of one size is one prepared statement, whose generic plan,
# made while the table was small, would otherwise scan every operation (the worker runs it
# for every batch it resumes).
_LOCK_ENSURED = text(
    """
    SELECT o.* FROM unnest(CAST(:ids AS uuid[])) AS v(id)
    JOIN operations o ON o.id = v.id
    WHERE o.state = 'open' AND o.recovery_point = 'idp_ensured'
    ORDER BY o.id
    FOR UPDATE OF o
    """
)
_TAKEN = text(
    """
    SELECT u.email FROM unnest(CAST(:emails AS text[])) AS e(email)
    JOIN users u ON u.email = e.email
    """
)


class PgBulk:
    """``BulkCreates`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection, work: WorkNotice | None = None) -> None:
        self._conn = conn
        self._work = work or WorkNotice()

    async def known(self, caller: str, keys: Sequence[str]) -> dict[str, KnownKey]:
        if not keys:
            return {}
        rows = await self._conn.execute(_KNOWN, {"caller": caller, "keys": list(keys)})
        return {
            r.idempotency_key: KnownKey(r.id, r.state, r.request_digest, r.result) for r in rows
        }

    async def taken_emails(self, emails: Sequence[str]) -> set[str]:
        if not emails:
            return set()
        return set((await self._conn.execute(_TAKEN, {"emails": list(emails)})).scalars())

    async def claim(self, claims: Sequence[BulkClaim]) -> set[UUID]:
        if not claims:
            return set()
        # E-mails in one order for every writer: two batches wait for each other, never in a
        # cycle (the seat lock comes after, as in the per-row claim).
        ordered = sorted(claims, key=lambda c: c.email)
        got_rows = set(
            (
                await self._conn.execute(
                    _CLAIM_USERS,
                    {
                        "ids": [c.user_id for c in ordered],
                        "emails": [c.email for c in ordered],
                        "names": [c.full_name for c in ordered],
                        "by": [c.created_by for c in ordered],
                        "status": UserStatus.PROVISIONING.value,
                    },
                )
            ).scalars()
        )
        mine = [c for c in ordered if c.user_id in got_rows]
        if not mine:
            return set()
        got_ops = set((await self._conn.execute(_CLAIM_OPERATIONS, _columns(mine))).scalars())
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
        moving = list(answers)  # the compare-and-set is the statement's WHERE
        result = await self._conn.execute(
            _ENSURED,
            {
                "ids": [a.operation_id for a in moving],
                "remote": [a.remote_id for a in moving],
                "created": [a.created_remote for a in moving],
                "flow": [json.dumps(a.flow_state) for a in moving],
                "point": RecoveryPoint.IDP_ENSURED.value,
                "expected": RecoveryPoint.CLAIMED.value,
            },
        )
        found = {row.id: _record(row) for row in result}
        return [found[a.operation_id] for a in moving if a.operation_id in found]

    async def holders(self, provider: str, remote_ids: Sequence[str]) -> dict[str, UUID]:
        if not remote_ids:
            return {}
        params = {"provider": provider, "remote": list(remote_ids)}
        return {r.remote_id: r.user_id for r in await self._conn.execute(_HOLDERS, params)}

    async def lock_ensured(self, operation_ids: Sequence[UUID]) -> list[OperationRecord]:
        if not operation_ids:
            return []
        rows = await self._conn.execute(_LOCK_ENSURED, {"ids": list(operation_ids)})
        return [_record(row) for row in rows]

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
        statement = pg_insert(idp_links)
        await self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=[idp_links.c.user_id, idp_links.c.provider],
                set_={
                    "remote_id": statement.excluded.remote_id,
                    "created_by_accord": statement.excluded.created_by_accord,
                },
            ),
            links,
        )
        await self._conn.execute(
            _USERS_JOINED,
            {
                "ids": [i.operation.user_id for i in items],
                "status": [str(i.status) for i in items],
                "names": [i.operation.request["full_name"] for i in items],
            },
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
        joined = pg_insert(memberships)
        await self._conn.execute(
            joined.on_conflict_do_update(
                index_elements=[memberships.c.user_id, memberships.c.organization_id],
                set_={"role": joined.excluded.role, "permissions": joined.excluded.permissions},
            ),
            joins,
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
                pg_insert(outbox).on_conflict_do_nothing(index_elements=[outbox.c.dedupe_key]),
                mails,
            )
        await self._conn.execute(
            _SUCCEEDED,
            {
                "ids": [i.operation.id for i in items],
                "results": [json.dumps(i.result) for i in items],
                "finished": RecoveryPoint.FINISHED.value,
                "succeeded": OperationState.SUCCEEDED.value,
                "expected": RecoveryPoint.IDP_ENSURED.value,
            },
        )


def _columns(claims: Sequence[BulkClaim]) -> dict[str, list[Any]]:
    """The claims' operations as one array per column."""
    ops = [c.operation for c in claims]
    return {
        "id": [op.id for op in ops],
        "kind": [str(op.kind) for op in ops],
        "caller": [op.caller for op in ops],
        "key": [op.idempotency_key for op in ops],
        "digest": [op.request_digest for op in ops],
        "request": [json.dumps(op.request) for op in ops],
        "state": [str(op.state) for op in ops],
        "point": [str(op.recovery_point) for op in ops],
        "deadline": [op.deadline_at for op in ops],
        "lease": [op.lease_until for op in ops],
        "attempts": [op.attempts for op in ops],
        "user_id": [c.user_id for c in claims],
        "org_id": [c.organization_id for c in claims],
    }

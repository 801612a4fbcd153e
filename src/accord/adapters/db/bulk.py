"""SQL for set-wise user creation (``BulkCreates``, domain/bulk_store.py): the rows the per-row
engine writes, a batch to a statement: the batch bound as one JSON parameter and expanded by
``json_to_recordset`` (short statements, prepared once whatever the batch's size)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import delete, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.operations import _OPEN, _record
from accord.adapters.db.sql import json_rows, uuid_array
from accord.adapters.db.tables import operations, users
from accord.adapters.db.users import PgUsers
from accord.adapters.db.work_signal import WorkNotice
from accord.domain.bulk_store import BulkClaim, BulkEnsured, BulkFinish, KnownKey
from accord.domain.model import OperationState, RecoveryPoint, UserStatus
from accord.domain.records import OperationRecord, UserView

o = operations.c

# A batch is ONE parameter: a JSON array of row objects (``json_rows``), expanded server-side by
# ``json_to_recordset`` into typed columns. The statement stays short and is prepared once,
# whatever the batch's size; binding one array per column instead made psycopg adapt (and
# quote) every element in Python, the largest part of a batch's time (bench/README.md,
# "import.py"). Each set joins its table on the primary key or a unique index, an index lookup
# per element in any plan; the ``state = 'open'`` predicates are literals (the partial indexes).
_CLAIM_USERS = text(
    """
    INSERT INTO users (id, email, full_name, status, created_by)
    SELECT u.id, u.email, u.full_name, :status, u.created_by
    FROM json_to_recordset(CAST(:rows AS json))
        AS u(id uuid, email text, full_name text, created_by text)
    ON CONFLICT (email) DO NOTHING
    RETURNING id
    """
)
_CLAIM_OPERATIONS = text(
    """
    INSERT INTO operations (id, kind, caller, idempotency_key, request_digest, request,
        state, recovery_point, deadline_at, lease_until, attempts, user_id, organization_id,
        flow_state)
    SELECT v.id, v.kind, v.caller, v.key, v.digest, v.request, v.state, v.point, v.deadline,
        v.lease, v.attempts, v.user_id, v.org_id, '{}'::jsonb
    FROM json_to_recordset(CAST(:rows AS json))
        AS v(id uuid, kind text, caller text, key text, digest text, request jsonb,
             state text, point text, deadline timestamptz, lease timestamptz, attempts int,
             user_id uuid, org_id uuid)
    ON CONFLICT DO NOTHING
    RETURNING id
    """
)
_ENSURED = text(
    """
    UPDATE operations o SET recovery_point = :point, remote_id = v.remote_id,
        created_remote = v.created, flow_state = v.flow, updated_at = now()
    FROM json_to_recordset(CAST(:rows AS json))
        AS v(id uuid, remote_id text, created boolean, flow jsonb)
    WHERE o.id = v.id AND o.state = 'open' AND o.recovery_point = :expected
    RETURNING o.*
    """
)
# Finalize's lock: only the ids (the records are those ``ensured`` answered; nothing that
# finalize reads changes while an operation stays open at ``idp_ensured``).
_LOCK_ENSURED = text(
    """
    SELECT o.id FROM unnest(CAST(:ids AS uuid[])) AS v(id)
    JOIN operations o ON o.id = v.id
    WHERE o.state = 'open' AND o.recovery_point = :point
    ORDER BY o.id
    FOR UPDATE OF o
    """
)
# Finalize's links, users and memberships: one statement, one parameter. The three writes touch
# different tables and none reads what another writes.
_LINK_AND_JOIN = text(
    """
    WITH v AS MATERIALIZED (
        SELECT * FROM json_to_recordset(CAST(:rows AS json))
            AS r(user_id uuid, organization_id uuid, remote_id text, created_by_accord boolean,
                 status text, full_name text, role text, permissions text[])
    ), linked AS (
        INSERT INTO idp_links (user_id, provider, remote_id, created_by_accord)
        SELECT v.user_id, :provider, v.remote_id, v.created_by_accord FROM v
        ON CONFLICT (user_id, provider) DO UPDATE
        SET remote_id = excluded.remote_id, created_by_accord = excluded.created_by_accord
    ), joined AS (
        UPDATE users u SET status = v.status, full_name = v.full_name,
            require_password_change = false, version = u.version + 1, updated_at = now()
        FROM v WHERE u.id = v.user_id
    )
    INSERT INTO memberships (user_id, organization_id, role, permissions)
    SELECT v.user_id, v.organization_id, v.role, v.permissions FROM v
    ON CONFLICT (user_id, organization_id) DO UPDATE
    SET role = excluded.role, permissions = excluded.permissions
    """
)
_INVITATIONS = text(
    """
    INSERT INTO outbox (kind, dedupe_key, recipient, payload)
    SELECT m.kind, m.dedupe_key, m.recipient, m.payload
    FROM json_to_recordset(CAST(:rows AS json))
        AS m(kind text, dedupe_key text, recipient text, payload jsonb)
    ON CONFLICT (dedupe_key) DO NOTHING
    """
)
_SUCCEEDED = text(
    """
    UPDATE operations o SET recovery_point = :finished, state = :succeeded,
        result = v.result, lease_until = NULL, error = NULL, updated_at = now()
    FROM json_to_recordset(CAST(:rows AS json)) AS v(id uuid, result jsonb)
    WHERE o.id = v.id AND o.state = 'open' AND o.recovery_point = :expected
    """
)


# A batch's keys and e-mails as a joined set (one JSON array), not ``IN (...)``: one index
# lookup per element in every plan. The IN list's generic plan (psycopg prepares a statement
# from its fifth run) was made while the tables were small, and kept scanning all of
# ``operations`` as it grew: 0.5 s a batch at 40,000 operations, most of a rerun's time.
_KNOWN = text(
    """
    SELECT o.idempotency_key, o.id, o.state, o.request_digest, o.result
    FROM json_array_elements_text(CAST(:keys AS json)) AS k(key)
    JOIN operations o ON o.caller = :caller AND o.idempotency_key = k.key
    """
)
_HOLDERS = text(
    """
    SELECT l.remote_id, l.user_id FROM unnest(CAST(:remote AS text[])) AS r(remote_id)
    JOIN idp_links l ON l.provider = :provider AND l.remote_id = r.remote_id
    """
)
_TAKEN = text(
    """
    SELECT u.email FROM json_array_elements_text(CAST(:emails AS json)) AS e(email)
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
        rows = await self._conn.execute(_KNOWN, {"caller": caller, "keys": json.dumps(list(keys))})
        return {
            r.idempotency_key: KnownKey(r.id, r.state, r.request_digest, r.result) for r in rows
        }

    async def taken_emails(self, emails: Sequence[str]) -> set[str]:
        if not emails:
            return set()
        found = await self._conn.execute(_TAKEN, {"emails": json.dumps(list(emails))})
        return set(found.scalars())

    async def claim(self, claims: Sequence[BulkClaim]) -> set[UUID]:
        if not claims:
            return set()
        # E-mails in one order for every writer: two batches wait for each other, never in a
        # cycle (the seat lock comes after, as in the per-row claim).
        ordered = sorted(claims, key=lambda c: c.email)
        rows = json_rows(
            {
                "id": c.user_id,
                "email": c.email,
                "full_name": c.full_name,
                "created_by": c.created_by,
            }
            for c in ordered
        )
        params = {"rows": rows, "status": UserStatus.PROVISIONING.value}
        got_rows = set((await self._conn.execute(_CLAIM_USERS, params)).scalars())
        mine = [c for c in ordered if c.user_id in got_rows]
        if not mine:
            return set()
        claimed = {"rows": json_rows(_operation_row(c) for c in mine)}
        got_ops = set((await self._conn.execute(_CLAIM_OPERATIONS, claimed)).scalars())
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
        rows = json_rows(
            {
                "id": a.operation_id,
                "remote_id": a.remote_id,
                "created": a.created_remote,
                "flow": a.flow_state,
            }
            for a in moving
        )
        params = {
            "rows": rows,
            "point": RecoveryPoint.IDP_ENSURED.value,
            "expected": RecoveryPoint.CLAIMED.value,
        }
        found = {row.id: _record(row) for row in await self._conn.execute(_ENSURED, params)}
        return [found[a.operation_id] for a in moving if a.operation_id in found]

    async def holders(self, provider: str, remote_ids: Sequence[str]) -> dict[str, UUID]:
        if not remote_ids:
            return {}
        params = {"provider": provider, "remote": list(remote_ids)}
        return {r.remote_id: r.user_id for r in await self._conn.execute(_HOLDERS, params)}

    async def lock_ensured(self, ensured: Sequence[OperationRecord]) -> list[OperationRecord]:
        if not ensured:
            return []
        by_id = {op.id: op for op in ensured}
        params = {"ids": uuid_array(by_id), "point": RecoveryPoint.IDP_ENSURED.value}
        locked = (await self._conn.execute(_LOCK_ENSURED, params)).scalars()
        return [by_id[i] for i in locked]

    async def link_and_join(self, items: Sequence[BulkFinish]) -> None:
        if not items:
            return
        providers = {i.provider for i in items}
        for provider in providers:  # one in practice: the context's IdP
            rows = json_rows(
                {
                    "user_id": i.operation.user_id,
                    "organization_id": i.operation.organization_id,
                    "remote_id": i.operation.remote_id,
                    "created_by_accord": i.created_by_accord,
                    "status": i.status,
                    "full_name": i.operation.request["full_name"],
                    "role": i.role,
                    "permissions": i.permissions,
                }
                for i in items
                if i.provider == provider
            )
            await self._conn.execute(_LINK_AND_JOIN, {"rows": rows, "provider": provider})

    async def views(self, user_ids: Sequence[UUID]) -> list[UserView]:
        return await PgUsers(self._conn).views(user_ids)

    async def finish(self, items: Sequence[BulkFinish]) -> None:
        if not items:
            return
        mails = [i.invitation for i in items if i.invitation is not None]
        if mails:
            self._work.mark()  # a worker sends them
            await self._conn.execute(_INVITATIONS, {"rows": json_rows(mails)})
        params = {
            "rows": json_rows({"id": i.operation.id, "result": i.result} for i in items),
            "finished": RecoveryPoint.FINISHED.value,
            "succeeded": OperationState.SUCCEEDED.value,
            "expected": RecoveryPoint.IDP_ENSURED.value,
        }
        await self._conn.execute(_SUCCEEDED, params)


def _operation_row(claim: BulkClaim) -> dict[str, Any]:
    """A claim's operation, as one row of ``_CLAIM_OPERATIONS``'s recordset."""
    op = claim.operation
    return {
        "id": op.id,
        "kind": op.kind,
        "caller": op.caller,
        "key": op.idempotency_key,
        "digest": op.request_digest,
        "request": op.request,
        "state": op.state,
        "point": op.recovery_point,
        "deadline": op.deadline_at,
        "lease": op.lease_until,
        "attempts": op.attempts,
        "user_id": claim.user_id,
        "org_id": claim.organization_id,
    }

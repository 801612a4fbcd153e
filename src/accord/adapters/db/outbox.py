"""SQL for the outbox and one-time tokens: mail written in the same transaction as the change it
announces, delivered after commit by the worker at least once; the single-use tokens its links
carry, stored as digests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Integer, Interval, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.direct import Direct, mapping
from accord.adapters.db.sql import seconds_ago
from accord.adapters.db.tables import one_time_tokens, outbox, users
from accord.adapters.db.work_signal import WorkNotice
from accord.domain.model import LIVE_STATUSES, TokenPurpose
from accord.domain.records import OneTimeTokenRecord, OutboxMessage


def _message(row: Any) -> OutboxMessage:
    found = mapping(row)
    return OutboxMessage(
        id=found["id"],
        kind=found["kind"],
        dedupe_key=found["dedupe_key"],
        recipient=found["recipient"],
        payload=found["payload"],
        attempts=found["attempts"],
        sent_at=found["sent_at"],
    )


# Built once (issue 12): each call only binds its values.
_ENQUEUE = Direct(  # the create path's: run on psycopg (issue 12)
    pg_insert(outbox).on_conflict_do_nothing(index_elements=[outbox.c.dedupe_key])
)
# The mail worker's, each a statement alone (issue 12: run on psycopg, the statement pool's).
# The lease: due messages, oldest first, each to one worker (``sql.lease_rows``, built once).
_LEASE_DUE = Direct(
    update(outbox)
    .where(
        outbox.c.id.in_(
            select(outbox.c.id)
            .where(outbox.c.sent_at.is_(None), outbox.c.next_attempt_at <= func.now())
            .order_by(outbox.c.next_attempt_at)
            .limit(bindparam("limit", type_=Integer()))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(
        next_attempt_at=func.now() + bindparam("lease", type_=Interval()),
        attempts=outbox.c.attempts + 1,
    )
    .returning(*outbox.c)
)
_MARK_SENT = Direct(
    update(outbox)
    .where(outbox.c.id == bindparam("w_id"))
    .values(sent_at=func.now(), last_error=None)
)
_MARK_FAILED = Direct(
    update(outbox)
    .where(outbox.c.id == bindparam("w_id"))
    .values(next_attempt_at=func.now() + bindparam("retry_in", type_=Interval()))
)
_MINT = Direct(insert(one_time_tokens))
_TOKEN_COLUMNS = ("digest", "user_id", "purpose", "expires_at")
# The mail worker's, once per set-password mail: the token, only for a user who may sign in.
_MINT_IF_LIVE = Direct(
    insert(one_time_tokens)
    .from_select(
        _TOKEN_COLUMNS,
        select(
            *(bindparam(name, type_=one_time_tokens.c[name].type) for name in _TOKEN_COLUMNS)
        ).where(
            select(users.c.id)
            .where(
                users.c.id == bindparam("user_id"),
                or_(*(users.c.status == s for s in LIVE_STATUSES)),
            )
            .exists()
        ),
    )
    .returning(one_time_tokens.c.id)
)


class PgOutbox:
    """``Outbox`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection, work: WorkNotice | None = None) -> None:
        self._conn = conn
        self._work = work or WorkNotice()

    async def enqueue(
        self, *, kind: str, dedupe_key: str, recipient: str, payload: dict[str, Any]
    ) -> None:
        self._work.mark()
        values = {
            "kind": kind,
            "dedupe_key": dedupe_key,
            "recipient": recipient,
            "payload": payload,
        }
        await _ENQUEUE.run(self._conn, values)

    async def delete_unsent(self, recipient: str, *, kinds: Sequence[str] | None = None) -> None:
        unsent = delete(outbox).where(outbox.c.recipient == recipient, outbox.c.sent_at.is_(None))
        if kinds is not None:
            unsent = unsent.where(outbox.c.kind.in_(list(kinds)))
        await self._conn.execute(unsent)

    async def lease_due(self, *, limit: int, lease_seconds: float) -> list[OutboxMessage]:
        lease = timedelta(seconds=float(lease_seconds))
        rows = await _LEASE_DUE.rows(self._conn, {"limit": limit, "lease": lease})
        return [_message(row) for row in rows]

    async def due_in(self) -> float | None:
        due_at = func.min(outbox.c.next_attempt_at) - func.now()
        query = select(func.extract("epoch", due_at)).where(outbox.c.sent_at.is_(None))
        seconds = (await self._conn.execute(query)).scalar()
        return None if seconds is None else float(seconds)

    async def mark_sent(self, message_id: int) -> None:
        await _MARK_SENT.run(self._conn, {"w_id": message_id})

    async def mark_failed(self, message_id: int, error: str, retry_in: float) -> None:
        retry = timedelta(seconds=float(retry_in))
        values = {"w_id": message_id, "last_error": error[:500], "retry_in": retry}
        await _MARK_FAILED.run(self._conn, values)


class PgOneTimeTokens:
    """``OneTimeTokens`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def insert(
        self, *, digest: str, user_id: UUID, purpose: TokenPurpose, expires_at: datetime
    ) -> None:
        await _MINT.run(
            self._conn,
            {"digest": digest, "user_id": user_id, "purpose": purpose, "expires_at": expires_at},
        )

    async def insert_if_live(
        self, *, digest: str, user_id: UUID, purpose: TokenPurpose, expires_at: datetime
    ) -> bool:
        values = {
            "digest": digest,
            "user_id": user_id,
            "purpose": purpose,
            "expires_at": expires_at,
        }
        return await _MINT_IF_LIVE.scalar(self._conn, values) is not None

    async def find_live(self, digest: str) -> OneTimeTokenRecord | None:
        query = select(one_time_tokens).where(
            one_time_tokens.c.digest == digest,
            one_time_tokens.c.used_at.is_(None),
            one_time_tokens.c.expires_at > func.now(),
        )
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        return OneTimeTokenRecord(
            id=row.id,
            digest=row.digest,
            user_id=row.user_id,
            purpose=TokenPurpose(row.purpose),
            expires_at=row.expires_at,
            used_at=row.used_at,
        )

    async def consume(self, token_id: int) -> bool:
        used = await self._conn.execute(
            update(one_time_tokens)
            .where(one_time_tokens.c.id == token_id, one_time_tokens.c.used_at.is_(None))
            .values(used_at=func.now())
        )
        return used.rowcount == 1

    async def release(self, token_id: int) -> None:
        await self._conn.execute(
            update(one_time_tokens).where(one_time_tokens.c.id == token_id).values(used_at=None)
        )

    async def delete_for_user(self, user_id: UUID) -> None:
        await self._conn.execute(
            delete(one_time_tokens).where(one_time_tokens.c.user_id == user_id)
        )

    async def expire(self) -> int:
        result = await self._conn.execute(
            delete(one_time_tokens).where(
                (one_time_tokens.c.expires_at < func.now())
                | (one_time_tokens.c.used_at < seconds_ago(86400))
            )
        )
        return result.rowcount

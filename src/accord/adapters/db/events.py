"""SQL for the change feed: events numbered after commit, so a reader never skips one.

Why not simply a sequence: ``change_events.seq`` is drawn when the writer inserts, but writers
commit in any order. Writer A draws 7, writer B draws 8 and commits; a reader pages past 8;
then A commits 7, behind the reader's cursor: missed for ever. Ordering by the writing
transaction's id (``pg_current_xact_id()``) and exposing only ids below ``pg_snapshot_xmin``
avoids the gap but breaks per-subject order: transaction ids are handed out when a transaction
first writes, and a later writer of a subject can hold a smaller id than the earlier one it
waited for (it wrote something else first).

So the feed position is given **after commit**:

1. Writers (``append``, one statement) insert events with ``position NULL``; no lock but the
   subject's own (``INSERT … ON CONFLICT DO UPDATE SET version = version + 1`` on
   ``subject_versions``, whose row lock a second writer of the same subject waits for).
   Nothing global on the hot path.
2. The assigner (``assign``, run by the worker loop and at the start of every feed read) takes
   ``pg_try_advisory_xact_lock`` (busy: it does nothing, the reader just reads), then in one
   statement gives every *visible* unassigned event, in ``seq`` order, the next positions
   ``last + 1, last + 2, …`` from the one-row ``change_feed_head`` and commits.
3. Readers read only assigned positions, ``position > cursor`` in position order.

**Gap-free.** Positions are only given by an assigner holding the lock, and it commits its
whole batch at once with the head; the next assigner starts only after that commit (the lock
is held to the end of the transaction) and numbers from the head it left. So the committed
positions are always exactly ``1 … head`` (minus what retention deleted from the front), and a
snapshot sees either all of an assigner's batch or none: whatever a reader has seen is a
prefix, and an event that commits later gets a position above every position already visible,
hence above any cursor. A rolled-back assigner gives nothing (the head rolls back with it).

**Per-subject order.** Two writers of one subject are ordered by the ``subject_versions`` row
lock: the second takes version n+1 and draws its ``seq`` only after the first committed with
version n. When the assigner sees the second event committed it sees the first too (it
committed earlier), either unassigned, then numbered first because its ``seq`` is smaller, or
assigned already by an earlier batch, with a smaller position. So positions follow versions.

**Retention** deletes the oldest assigned events past ``events_retention_days`` and moves
``horizon`` to the last position deleted: a cursor below it has missed events (410).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.direct import Direct
from accord.adapters.db.sql import json_rows, seconds_ago
from accord.adapters.db.tables import change_events, change_feed_head
from accord.adapters.db.work_signal import WorkNotice
from accord.domain.changes import NOT_CHANGES
from accord.domain.records import ChangeEvent, FeedQuery, NewChange, NewEvent

ASSIGNER_LOCK_KEY = 0x61636366_65656421  # "accfeed!": one assigner at a time

c = change_events.c
head = change_feed_head.c

# Number the visible unassigned events in seq order after the head, and move the head, in one
# statement (its snapshot is the set numbered: what committed before it began).
_ASSIGN = text(
    """
    WITH todo AS (
        SELECT seq, row_number() OVER (ORDER BY seq) AS n
        FROM change_events WHERE position IS NULL ORDER BY seq LIMIT :limit
    ), moved AS (
        INSERT INTO change_feed_head AS h (id, last_position)
        VALUES (1, (SELECT count(*) FROM todo))
        ON CONFLICT (id) DO UPDATE SET last_position = h.last_position + excluded.last_position
        RETURNING h.last_position - (SELECT count(*) FROM todo) AS base
    )
    UPDATE change_events e SET position = moved.base + todo.n
    FROM todo, moved WHERE e.seq = todo.seq
    """
)


# One statement per event: lock the subject's row and read its previous document, grow its
# version, diff the documents' top-level fields (sorted, byte order as in Python), insert with
# the operation's idempotency key. A change's events go in one executemany (one round trip).
_APPEND = text(
    """
    WITH prev AS MATERIALIZED (
        SELECT document FROM subject_versions
        WHERE subject_type = :subject_type AND subject_id = :subject_id
        FOR UPDATE
    ), bumped AS (
        -- reads prev first: the lock and the old document come before the upsert's change
        INSERT INTO subject_versions AS s (subject_type, subject_id, version, document)
        SELECT :subject_type, :subject_id, 1, CAST(:data AS jsonb)
        WHERE (SELECT count(*) FROM prev) >= 0
        ON CONFLICT (subject_type, subject_id)
        DO UPDATE SET version = s.version + 1, document = excluded.document
        RETURNING s.version
    ), diff AS (
        SELECT coalesce(array_agg(n.key ORDER BY n.key COLLATE "C"), '{}') AS changed
        FROM jsonb_each(CAST(:data AS jsonb)) AS n(key, value)
        WHERE n.key <> ALL(CAST(:ignored AS text[]))
          AND ((SELECT document FROM prev) -> n.key) IS DISTINCT FROM n.value
    )
    INSERT INTO change_events (
        id, type, subject_type, subject_id, version, organization_id, user_id, invitation_id,
        organization_ids, data, changed, operation_id, idempotency_key
    )
    SELECT :id, :type, :subject_type, :subject_id, bumped.version, :organization_id, :user_id,
        :invitation_id, CAST(:organization_ids AS uuid[]), CAST(:data AS jsonb), diff.changed,
        :operation_id, (SELECT idempotency_key FROM operations WHERE id = :operation_id)
    FROM bumped, diff
    """
)

_APPEND_ONE = Direct(_APPEND)

# ``_APPEND`` for a batch of events whose subjects are all different (set-wise creation's
# record_many, issue 12): one statement, one JSON parameter, instead of one execution per
# event. The same steps: the subjects' rows locked (in one order: no cycle between two such
# batches) and their previous documents read first, the versions grown by one, the documents
# diffed, the events inserted in the given order with their operations' idempotency keys.
_APPEND_MANY = Direct(
    text(
        """
    WITH v AS MATERIALIZED (
        SELECT * FROM json_to_recordset(CAST(:rows AS json))
            AS r(n int, id uuid, type text, subject_type text, subject_id text,
                 organization_id uuid, user_id uuid, invitation_id uuid,
                 organization_ids uuid[], data jsonb, operation_id uuid)
    ), prev AS MATERIALIZED (
        SELECT s.subject_type, s.subject_id, s.document
        FROM v JOIN subject_versions s
            ON s.subject_type = v.subject_type AND s.subject_id = v.subject_id
        ORDER BY s.subject_type, s.subject_id
        FOR UPDATE OF s
    ), bumped AS (
        -- reads prev first: the locks and the old documents come before the upsert's change
        INSERT INTO subject_versions AS s (subject_type, subject_id, version, document)
        SELECT v.subject_type, v.subject_id, 1, v.data FROM v
        WHERE (SELECT count(*) FROM prev) >= 0
        ORDER BY v.subject_type, v.subject_id
        ON CONFLICT (subject_type, subject_id)
        DO UPDATE SET version = s.version + 1, document = excluded.document
        RETURNING s.subject_type, s.subject_id, s.version
    )
    INSERT INTO change_events (
        id, type, subject_type, subject_id, version, organization_id, user_id, invitation_id,
        organization_ids, data, changed, operation_id, idempotency_key
    )
    SELECT v.id, v.type, v.subject_type, v.subject_id, b.version, v.organization_id, v.user_id,
        v.invitation_id, v.organization_ids, v.data,
        (SELECT coalesce(array_agg(d.key ORDER BY d.key COLLATE "C"), '{}')
         FROM jsonb_each(v.data) AS d(key, value)
         WHERE d.key <> ALL(CAST(:ignored AS text[]))
           AND (p.document -> d.key) IS DISTINCT FROM d.value),
        v.operation_id, op.idempotency_key
    FROM v
    JOIN bumped b ON b.subject_type = v.subject_type AND b.subject_id = v.subject_id
    LEFT JOIN prev p ON p.subject_type = v.subject_type AND p.subject_id = v.subject_id
    LEFT JOIN operations op ON op.id = v.operation_id
    ORDER BY v.n
    """
    )
)
# From two events on (a create's user and membership), one statement for all of them.
_SET_WISE_FROM = 2


class PgChangeFeed:
    """``ChangeFeed`` on PostgreSQL (see the module docstring for why it has no gaps)."""

    def __init__(self, conn: AsyncConnection, work: WorkNotice | None = None) -> None:
        self._conn = conn
        self._work = work or WorkNotice()

    async def append(self, events: Sequence[NewEvent]) -> None:
        if not events:
            return
        subjects = {(e.subject_type, e.subject_id) for e in events}
        if len(events) >= _SET_WISE_FROM and len(subjects) == len(events):
            self._work.mark()
            await _APPEND_MANY.run(self._conn, {"rows": _rows(events), **_IGNORED})
            return
        rows = [
            {
                "id": event.id,
                "type": event.type,
                "subject_type": event.subject_type,
                "subject_id": event.subject_id,
                "organization_id": event.organization_id,
                "user_id": event.user_id,
                "invitation_id": event.invitation_id,
                "organization_ids": list(event.organization_ids),
                "data": json.dumps(event.data) if event.data is not None else None,
                "operation_id": event.operation_id,
                "ignored": list(NOT_CHANGES),
            }
            for event in events
        ]
        if rows:
            self._work.mark()  # a worker gives them their positions (and their webhooks)
            if len(rows) == 1:  # the usual change: on psycopg directly (issue 12: ``Direct``)
                await _APPEND_ONE.run(self._conn, rows[0])
            else:
                await self._conn.execute(_APPEND, rows)

    async def assign(self, *, limit: int) -> int | None:
        locked = select(func.pg_try_advisory_xact_lock(ASSIGNER_LOCK_KEY))
        if not (await self._conn.execute(locked)).scalar_one():
            return None
        return (await self._conn.execute(_ASSIGN, {"limit": limit})).rowcount

    async def page(self, query: FeedQuery) -> list[ChangeEvent]:
        statement = (
            select(change_events)
            .where(c.position.is_not(None), c.position > query.after)
            .order_by(c.position)
            .limit(query.limit)
        )
        if query.types:
            statement = statement.where(c.type.in_(query.types))
        if query.organization_id is not None:
            statement = statement.where(c.organization_ids.any_() == query.organization_id)
        return [_event(row) for row in await self._conn.execute(statement)]

    async def horizon(self) -> int:
        found = await self._conn.execute(select(head.horizon).where(head.id == 1))
        return int(found.scalar_one_or_none() or 0)

    async def delete_older_than(self, days: float, *, limit: int) -> int:
        old = (
            select(c.seq)
            .where(c.position.is_not(None), c.occurred_at < seconds_ago(days * 86400))
            .order_by(c.position)
            .limit(limit)
            .scalar_subquery()
        )
        gone = await self._conn.execute(
            delete(change_events).where(c.seq.in_(old)).returning(c.position)
        )
        positions = [row.position for row in gone]
        if positions:
            moved = pg_insert(change_feed_head).values(
                id=1, last_position=max(positions), horizon=max(positions)
            )
            moved = moved.on_conflict_do_update(
                index_elements=["id"],
                set_={"horizon": func.greatest(head.horizon, literal(max(positions)))},
            )
            await self._conn.execute(moved)
        return len(positions)


_IGNORED = {"ignored": list(NOT_CHANGES)}


def _rows(events: Sequence[NewEvent]) -> str:
    """The events as ``_APPEND_MANY``'s one parameter, numbered in their order."""
    return json_rows(
        {
            "n": n,
            "id": e.id,
            "type": e.type,
            "subject_type": e.subject_type,
            "subject_id": e.subject_id,
            "organization_id": e.organization_id,
            "user_id": e.user_id,
            "invitation_id": e.invitation_id,
            "organization_ids": e.organization_ids,
            "data": e.data,
            "operation_id": e.operation_id,
        }
        for n, e in enumerate(events)
    )


def _event(row: Any) -> ChangeEvent:
    change = NewChange(
        id=row.id,
        type=row.type,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        version=row.version,
        organization_id=row.organization_id,
        user_id=row.user_id,
        invitation_id=row.invitation_id,
        data=row.data,
        organization_ids=tuple(row.organization_ids),
        changed=tuple(row.changed),
        operation_id=row.operation_id,
        idempotency_key=row.idempotency_key,
    )
    return ChangeEvent(
        seq=row.seq, position=row.position, occurred_at=row.occurred_at, change=change
    )

"""In-memory change feed (see ``memory_store.py`` and ``adapters/db/events.py``).

Transactions run one at a time here, so every committed event is visible to the next
assigner; positions are given after commit all the same, in seq order, as on PostgreSQL.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from datetime import timedelta

from accord.domain.changes import changed_fields
from accord.domain.records import ChangeEvent, FeedQuery, NewChange, NewEvent
from accord.testing.memory_tables import Repository


class MemoryChangeFeed(Repository):
    async def append(self, events: Sequence[NewEvent]) -> None:
        for event in events:
            key = (event.subject_type, event.subject_id)
            version, before = self.t.subject_versions.get(key, (0, None))
            self.t.subject_versions[key] = (version + 1, copy.deepcopy(event.data))
            op = self.t.operations.get(event.operation_id) if event.operation_id else None
            change = NewChange(
                **{f.name: getattr(event, f.name) for f in dataclasses.fields(event)},
                version=version + 1,
                changed=changed_fields(before, event.data),
                idempotency_key=op.idempotency_key if op is not None else None,
            )
            stored = ChangeEvent(next(self.ids), None, self.now(), copy.deepcopy(change))
            self.t.events.append(stored)

    async def assign(self, *, limit: int) -> int | None:
        assigned = 0
        for index, event in enumerate(self.t.events):
            if assigned == limit:
                break
            if event.position is None:
                self.t.feed_head += 1
                assigned += 1
                self.t.events[index] = dataclasses.replace(event, position=self.t.feed_head)
        return assigned

    async def page(self, query: FeedQuery) -> list[ChangeEvent]:
        found = sorted(
            (e for e in self.t.events if e.position is not None and _matches(e, query)),
            key=lambda e: e.position or 0,
        )
        return [copy.deepcopy(e) for e in found[: query.limit]]

    async def horizon(self) -> int:
        return self.t.feed_horizon

    async def delete_older_than(self, days: float, *, limit: int) -> int:
        before = self.now() - timedelta(days=days)
        old = sorted(
            (e for e in self.t.events if e.position is not None and e.occurred_at < before),
            key=lambda e: e.position or 0,
        )[:limit]
        gone = {e.seq for e in old}
        self.t.events = [e for e in self.t.events if e.seq not in gone]
        if old:
            self.t.feed_horizon = max(self.t.feed_horizon, max(e.position or 0 for e in old))
        return len(old)


def _matches(event: ChangeEvent, q: FeedQuery) -> bool:
    change = event.change
    return (
        (event.position or 0) > q.after
        and (not q.types or change.type in q.types)
        and (q.organization_id is None or q.organization_id in change.organization_ids)
    )

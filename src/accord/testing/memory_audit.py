"""In-memory audit trail (see ``memory_store.py``): append-only, read in (at, id) order."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from accord.domain.ports import Clock
from accord.domain.records import AuditEntry, AuditEvent, AuditQuery
from accord.testing.memory_tables import Repository, Tables


class MemoryAudit(Repository):
    def __init__(self, tables: Tables, clock: Clock, ids: itertools.count[int]) -> None:
        super().__init__(tables, clock, ids)

    async def record(self, event: AuditEvent, *, current: Mapping[str, Any] | None = None) -> None:
        self.t.audit.append(AuditEntry(next(self.ids), self.now(), copy.deepcopy(event)))

    async def record_many(
        self,
        events: Sequence[AuditEvent],
        *,
        current: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        for event in events:
            await self.record(event)

    async def delete_older_than(self, days: float, *, limit: int) -> int:
        before = self.now() - timedelta(days=days)
        old = len(list(itertools.takewhile(lambda e: e.at < before, self.t.audit[:limit])))
        del self.t.audit[:old]
        return old

    async def query(self, query: AuditQuery) -> list[AuditEntry]:
        found = sorted((e for e in self.t.audit if _matches(e, query)), key=lambda e: (e.at, e.id))
        return [copy.deepcopy(e) for e in found[: query.limit]]


def _matches(entry: AuditEntry, q: AuditQuery) -> bool:
    event = entry.event
    checks = (
        q.organization_id is None or event.organization_id == q.organization_id,
        q.user_id is None or q.user_id in (event.subject_user_id, event.by.user_id),
        q.action is None or event.action == q.action,
        q.since is None or entry.at >= q.since,
        q.until is None or entry.at < q.until,
        q.after is None or (entry.at, entry.id) > q.after,
    )
    return all(checks)

"""The embedded mailbox in memory (the ``Mailbox`` repository's twin)."""

from __future__ import annotations

from datetime import timedelta

from accord.domain.records import MailRecord
from accord.testing.memory_tables import Repository


class MemoryMailbox(Repository):
    async def deliver(self, *, recipient: str, subject: str, body: str) -> int:
        message_id = next(self.ids)
        self.t.mailbox[message_id] = MailRecord(message_id, recipient, subject, body, self.now())
        return message_id

    async def list(
        self, *, recipient: str | None = None, before: int | None = None, limit: int = 50
    ) -> list[MailRecord]:
        found = [
            m
            for i, m in sorted(self.t.mailbox.items(), reverse=True)
            if (recipient is None or m.recipient == recipient) and (before is None or i < before)
        ]
        return found[:limit]

    async def get(self, message_id: int) -> MailRecord | None:
        return self.t.mailbox.get(message_id)

    async def delete_older_than(self, days: float, *, limit: int) -> int:
        before = self.now() - timedelta(days=days)
        old = [i for i, m in sorted(self.t.mailbox.items()) if m.created_at < before][:limit]
        for message_id in old:
            del self.t.mailbox[message_id]
        return len(old)

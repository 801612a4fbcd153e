"""The embedded mailbox: with no SMTP server configured, mail is kept in accord's database
(table ``mailbox``) instead of failing, and read with ``accord mail list`` or
``GET /api/admin/mailbox``. Its links are secrets in transit: housekeeping deletes messages after
``mailbox_retention_days``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from accord.domain.store import Store


class MailboxMailer:
    """Keeps one message per call in the database; a database failure raises (retried later)."""

    transport = "mailbox"

    def __init__(self, store: Store) -> None:
        self.store = store

    async def send(self, recipient: str, subject: str, body: str) -> None:
        async with self.store.transaction() as tx:
            await tx.mailbox.deliver(recipient=recipient, subject=subject, body=body)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[MailboxMailer]:
        """Nothing to connect to: each message is its own transaction."""
        yield self

    async def check(self) -> str:
        """Prove the mailbox answers; a sentence for ``accord doctor``."""
        async with self.store.transaction() as tx:
            newest = await tx.mailbox.list(limit=1)
        last = f"newest message #{newest[0].id}" if newest else "empty"
        return f"embedded mailbox (no SMTP server configured; `accord mail list`), {last}"

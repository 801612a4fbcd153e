"""Housekeeping bounds the embedded mailbox: messages past ``mailbox_retention_days`` go."""

from __future__ import annotations

from sqlalchemy import text

from accord.adapters.mail.mailbox import MailboxMailer
from accord.bootstrap import Accord
from accord.services import worker


async def test_mail_older_than_the_retention_is_deleted(accord: Accord) -> None:
    mailer = MailboxMailer(accord.store)
    await mailer.send("old@example.com", "Old", "https://example.test/old")
    await mailer.send("new@example.com", "New", "https://example.test/new")
    async with accord.db.transaction() as conn:
        await conn.execute(
            text("UPDATE mailbox SET created_at = now() - interval '8 days' WHERE subject = 'Old'")
        )
    result = worker.Pass()
    await worker.housekeeping(accord, result)
    assert result.deleted_mail == 1
    async with accord.store.transaction() as tx:
        assert [m.recipient for m in await tx.mailbox.list()] == ["new@example.com"]

"""Reading the embedded mailbox (platform callers only): the mail accord kept because no SMTP
server is configured, with the links found in each message.

Its links (set-password, invitation, verification) are secrets in transit: whoever reads the
mailbox can use them, so only a platform caller (or the CLI, on the server) may, and
housekeeping deletes messages after ``mailbox_retention_days``.
"""

from __future__ import annotations

import re
from typing import Any

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.emails import normalize_email
from accord.domain.records import MailRecord
from accord.services.context import Context
from accord.services.reads import MAX_PAGE_SIZE

# An http(s) URL up to the first space, quote or angle bracket; a sentence's closing
# punctuation is not part of it.
_LINK = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)"


def links_in(body: str) -> list[str]:
    """The http(s) links of a message, in order."""
    return [match.rstrip(_TRAILING) for match in _LINK.findall(body)]


def mail_json(message: MailRecord, *, body: bool = False) -> dict[str, Any]:
    """A message's summary (with its text, if asked) and its links."""
    document: dict[str, Any] = {
        "id": message.id,
        "to": message.recipient,
        "subject": message.subject,
        "created_at": message.created_at.isoformat(),
        "links": links_in(message.body),
    }
    if body:
        document["body"] = message.body
    return document


async def list_mail(
    accord: Context,
    *,
    caller: Caller,
    to: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """A page of the mailbox, newest first: ``{"items", "next_cursor"}``."""
    caller.require_platform()
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise errors.InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}.")
    before = _cursor(cursor) if cursor else None
    recipient = normalize_email(to) if to is not None else None
    async with accord.store.transaction() as tx:
        found = await tx.mailbox.list(recipient=recipient, before=before, limit=limit + 1)
    items = [mail_json(m) for m in found[:limit]]
    more = len(found) > limit
    return {"items": items, "next_cursor": str(items[-1]["id"]) if more else None}


async def get_mail(accord: Context, message_id: int | str, *, caller: Caller) -> dict[str, Any]:
    """One message with its text and links; MailNotFound if there is none."""
    caller.require_platform()
    number = _cursor(str(message_id), what="The message id")
    async with accord.store.transaction() as tx:
        message = await tx.mailbox.get(number)
    if message is None:
        raise errors.MailNotFound(f"No message {number} in the mailbox.")
    return mail_json(message, body=True)


def _cursor(value: str, what: str = "The cursor") -> int:
    if not value.isdigit() or len(value) > 18:
        raise errors.InvalidInput(f"{what} must be a message number, not {value!r}.")
    return int(value)

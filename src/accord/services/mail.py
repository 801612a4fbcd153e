"""Delivering the outbox: each queued message becomes one mail, sent after its change committed
(G8), at least once, deduplicated by its key (one outbox row per key).

Set-password links (and e-mail verification links, services/verification.py) are minted here,
at send time, so no link ever rests in the database in a form that could be read back (only its
digest is stored). A set-password message that is sent twice (a crash between sending and
recording it) carries two links; both work until they expire (or until one of them is used).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from accord.domain.ports import Mailer, MailSession
from accord.domain.records import OutboxMessage
from accord.services import crashpoints, email_change, invitations, verification, webhook_delivery
from accord.services.context import Context
from accord.services.crashpoints import CrashPoint
from accord.services.credentials import mint_password_setup_if_live, setup_link
from accord.services.engine import backoff_seconds

__all__ = ["Delivery", "Mailer", "compose", "deliver_outbox"]

SEND_LEASE_SECONDS = 120.0


@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0
    skipped: int = 0


def compose(kind: str, payload: dict[str, Any], link: str, expires_at: datetime) -> tuple[str, str]:
    """Subject and text of a message: what to do, and until when."""
    name = payload.get("full_name") or "there"
    until = expires_at.strftime("%Y-%m-%d %H:%M UTC")
    hours = int(payload.get("valid_hours", 24))
    if kind == "invitation":
        subject = "You have been invited: set your password"
        opening = "An account has been created for you."
    else:
        subject = "Set your password"
        opening = "Someone (hopefully you) asked to set the password of your account."
    body = (
        f"Hello {name},\n\n{opening} To choose your password, open this link:\n\n  {link}\n\n"
        f"The link works once and expires in {hours} hours (at {until}). If it has expired, "
        "ask for a new one on the sign-in page.\n\nIf you did not expect this message, you can "
        "ignore it.\n"
    )
    return subject, body


def compose_email_changed(payload: dict[str, Any]) -> tuple[str, str]:
    """The notice to a user's old address that their account now uses another (no link)."""
    name = payload.get("full_name") or "there"
    body = (
        f"Hello {name},\n\nThe e-mail address of your account was changed to "
        f"{payload['new_email']}. From now on, sign in with that address; mail about your "
        "account goes there.\n\nIf you did not ask for this change, contact your "
        "administrator at once.\n"
    )
    return "The e-mail address of your account was changed", body


async def _compose(accord: Context, message: OutboxMessage) -> tuple[str, str] | None:
    """The message's subject and text, its link minted now; None if nobody is left to mail."""
    if message.kind in verification.MAIL_KINDS:
        return await verification.compose_mail(accord, message)
    if message.kind in invitations.MAIL_KINDS:
        return await invitations.compose_mail(accord, message)
    if message.kind == "email_changed":
        return compose_email_changed(message.payload)
    if message.kind == webhook_delivery.DISABLED_MAIL:
        return webhook_delivery.compose_disabled_mail(message.payload)
    if message.kind == email_change.LINK_MAIL:
        return await email_change.compose_link_mail(accord, message)
    user_id = UUID(message.payload["user_id"])
    # The user's check and the token in one statement, alone (issue 12).
    async with accord.store.statement() as tx:
        minted = await mint_password_setup_if_live(tx, accord, user_id)
    if minted is None:
        return None  # suspended, deprovisioned or gone meanwhile: nobody to invite
    token, expires_at = minted
    return compose(message.kind, message.payload, setup_link(accord, token), expires_at)


async def deliver_outbox(accord: Context, mailer: Mailer, *, limit: int = 20) -> Delivery:
    """Send the messages that are due, over one mail session; a failed one is retried later
    with backoff. Each message is marked in its own transaction right after it was sent: a
    crash loses at most the record of the one in hand (it is sent again, at least once)."""
    delivery = Delivery()
    # The lease and each mark are one statement each: alone, in autocommit (issue 12).
    async with accord.store.statement() as tx:
        messages = await tx.outbox.lease_due(limit=limit, lease_seconds=SEND_LEASE_SECONDS)
    if not messages:
        return delivery
    async with mailer.session() as session:
        for message in messages:
            await _deliver(accord, session, message, delivery)
    return delivery


async def _deliver(
    accord: Context, session: MailSession, message: OutboxMessage, delivery: Delivery
) -> None:
    composed = await _compose(accord, message)
    if composed is None:
        async with accord.store.statement() as tx:  # nobody left to mail: done with it
            await tx.outbox.mark_sent(message.id)
        delivery.skipped += 1
        return
    subject, body = composed
    try:
        await session.send(message.recipient, subject, body)
        crashpoints.reach(accord.settings, CrashPoint.MAIL_SENT)
    except Exception as exc:  # any failure of the mail server: retry this message later
        retry_in = backoff_seconds(message.attempts)
        async with accord.store.statement() as tx:
            await tx.outbox.mark_failed(message.id, f"{type(exc).__name__}: {exc}", retry_in)
        delivery.failed += 1
        return
    async with accord.store.statement() as tx:
        await tx.outbox.mark_sent(message.id)
    delivery.sent += 1

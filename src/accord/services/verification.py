"""Public registration that proves the e-mail address first (``registration.verify_email``).

``request_registration`` answers the same for a new and for a taken address, doing the same
work either way (one sealing, one transaction with one lookup and one queued mail), so the
answer tells nobody whether an account exists:

- a new address: the registration waits in ``email_verifications`` (the chosen password only
  sealed, G9) and a verification mail is queued in the outbox, sent after commit (G8). The
  link's token is minted when the mail is sent and only its SHA-256 digest is stored; a mail
  sent again (a crash between sending and recording it) carries a new link that replaces the
  old one. The link expires after ``registration.link_ttl_hours``.
- a taken address: its owner is told that someone tried to register, and how to sign in or
  reset the password. Nothing about the account changes.

``verify_registration`` runs the durable register operation (services/registration.py) for the
link's registration. Its claim consumes the link in the transaction that claims the account, so
however often, or however concurrently, the link is used, exactly one use makes the account and
its one personal organization (G4); the others answer ``token_invalid``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from accord.domain import errors, secrets
from accord.domain.model import RegistrationSource, UserStatus
from accord.domain.records import NewVerification, OutboxMessage
from accord.domain.store import Transaction
from accord.services.context import Context
from accord.services.credentials import check_chosen_password
from accord.services.registration import Registration, register, registration_body

VERIFICATION_MAIL = "registration_verification"
ATTEMPT_MAIL = "registration_attempted"
MAIL_KINDS = frozenset({VERIFICATION_MAIL, ATTEMPT_MAIL})
# One "someone tried to register" mail per account per quarter hour, however often they try.
ATTEMPT_WINDOW_SECONDS = 900


async def request_registration(accord: Context, request: Registration) -> None:
    """Mail a verification link to a new address, or a notice to a taken one's owner."""
    body = registration_body(request)
    check_chosen_password(accord, request.password, body["email"], body["full_name"])
    sealed = accord.sealer.seal({"password": request.password})  # for either answer: same work
    now = accord.clock.now()
    async with accord.store.transaction() as tx:
        holder = await tx.users.by_email(body["email"])
        if holder is not None and holder.status != UserStatus.DISABLED:
            await _queue_attempt_notice(tx, holder.id, body["email"], now)
        else:
            await _queue_verification(tx, accord, body, sealed, now)


async def _queue_verification(
    tx: Transaction, accord: Context, body: dict[str, Any], sealed: bytes, now: datetime
) -> None:
    hours = accord.settings.registration.link_ttl_hours
    verification_id = uuid4()
    await tx.verifications.insert(
        NewVerification(
            id=verification_id,
            email=body["email"],
            request=body,
            sealed_secrets=sealed,
            expires_at=now + timedelta(hours=hours),
        )
    )
    await tx.outbox.enqueue(
        kind=VERIFICATION_MAIL,
        dedupe_key=f"{VERIFICATION_MAIL}:{verification_id}",
        recipient=body["email"],
        payload={
            "verification_id": str(verification_id),
            "full_name": body["full_name"],
            "valid_hours": hours,
        },
    )


async def _queue_attempt_notice(tx: Transaction, user_id: UUID, email: str, now: datetime) -> None:
    window = int(now.timestamp() // ATTEMPT_WINDOW_SECONDS)
    await tx.outbox.enqueue(
        kind=ATTEMPT_MAIL,
        dedupe_key=f"{ATTEMPT_MAIL}:{user_id}:{window}",
        recipient=email,
        payload={"user_id": str(user_id)},
    )


async def verify_registration(accord: Context, token: str) -> dict[str, Any]:
    """Make the account of the registration whose link carries ``token`` (see the module)."""
    async with accord.store.transaction() as tx:
        found = await tx.verifications.find_live(secrets.digest(token or ""))
    if found is None:
        raise errors.TokenInvalid(
            "The link is invalid, already used or expired: register again for a new one."
        )
    request = Registration(
        email=found.email,
        password=accord.sealer.open(found.sealed_secrets)["password"],
        full_name=found.request["full_name"],
        organization_name=found.request.get("organization_name"),
        source=RegistrationSource(found.request["source"]),
    )
    return await register(accord, request, verification_id=found.id)


# -- the mails ------------------------------------------------------------------------------------


async def compose_mail(accord: Context, message: OutboxMessage) -> tuple[str, str] | None:
    """Subject and text of a registration mail; None when it has nobody left to reach."""
    if message.kind == VERIFICATION_MAIL:
        return await _verification_mail(accord, message.payload)
    return await _attempt_mail(accord, message.payload)


async def _verification_mail(accord: Context, payload: dict[str, Any]) -> tuple[str, str] | None:
    token = secrets.new_token()
    async with accord.store.transaction() as tx:
        found = await tx.verifications.issue_link(
            UUID(payload["verification_id"]), secrets.digest(token)
        )
    if found is None:  # used or expired meanwhile: no link to send
        return None
    link = f"{accord.settings.public_url.rstrip('/')}/register/verify#token={token}"
    until = found.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"Hello {payload.get('full_name') or 'there'},\n\nTo finish creating your account, "
        f"confirm that this address is yours by opening this link:\n\n  {link}\n\n"
        f"The link works once and expires at {until}. If it has expired, register again.\n\n"
        "If you did not sign up, ignore this message: no account exists without the link.\n"
    )
    return "Confirm your e-mail address to finish signing up", body


async def _attempt_mail(accord: Context, payload: dict[str, Any]) -> tuple[str, str] | None:
    async with accord.store.transaction() as tx:
        user = await tx.users.get(UUID(payload["user_id"]))
    if user is None or not user.is_live:
        return None
    base = accord.settings.public_url.rstrip("/")
    body = (
        f"Hello {user.full_name},\n\nSomeone (perhaps you) tried to create an account with this "
        "e-mail address, which already has one. Nothing was created, and nothing about your "
        f"account changed.\n\nTo sign in, go to {base}/sign-in. If you have forgotten your "
        f"password, ask for a set-password link at {base}/set-password.\n\n"
        "If it was not you, you can ignore this message.\n"
    )
    return "Someone tried to register with your e-mail address", body

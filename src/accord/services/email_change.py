"""Self-service e-mail changes with the built-in IdP: a signed-in person asks for a new address,
the new address receives a link, and the change applies when the link is used.

The link's token is minted when the mail is sent (as every link accord mails: only its SHA-256
digest is stored, in ``one_time_tokens`` with purpose ``email_change``). The token carries the
new address in clear before a random part (``<base64url of the address>.<random>``): the digest
covers both, so the address cannot be altered without the token failing, and no table needs
to keep it. Using the link consumes the token atomically (G9: of concurrent uses exactly one
gets through) and runs the same ``change_email`` operation an administrator's PATCH runs
(services/profile.py), so the address is reserved, checked against the IdP, changed in both
systems or compensated, and the old address is told.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from accord.domain import errors, secrets
from accord.domain.callers import Caller
from accord.domain.emails import normalize_email
from accord.domain.model import TokenPurpose
from accord.domain.ports import VerifiesPasswords
from accord.domain.principals import Principal
from accord.domain.records import AuditEvent, OutboxMessage
from accord.services import profile
from accord.services.context import Context

LINK_MAIL = "email_change_link"
LINK_TTL_HOURS = 24.0


def _require_local(accord: Context) -> None:
    if not isinstance(accord.idp, VerifiesPasswords):
        raise errors.Forbidden(
            f"E-mail addresses are changed in the identity provider ({accord.idp.name}) or by "
            "an administrator (PATCH /api/admin/users/{id}), not here."
        )


def self_caller(user_id: UUID) -> Caller:
    """The signed-in person, changing their own account (any of their organizations)."""
    principal = Principal.user(user_id)
    return Caller(principal.label, principal, is_platform=True)


async def request_email_change(accord: Context, user_id: UUID, new_email: str) -> dict[str, Any]:
    """Queue a verification link to ``new_email`` for the signed-in user ``user_id``.

    The answer does not say whether the address is taken (that would tell a signed-in person
    who else has an account): a taken address is refused when the link is used.
    """
    _require_local(accord)
    address = normalize_email(new_email)
    async with accord.store.transaction() as tx:
        user = await tx.users.get(user_id)
        if user is None or not user.is_live:
            raise errors.Unauthenticated("The login token is invalid or has expired.")
        if address == user.email:
            raise errors.InvalidInput("This is the account's address already.")
        await tx.outbox.enqueue(
            kind=LINK_MAIL,
            dedupe_key=f"{LINK_MAIL}:{uuid4()}",  # each request its own link
            recipient=address,
            payload={
                "user_id": str(user_id),
                "full_name": user.full_name,
                "new_email": address,
                "valid_hours": LINK_TTL_HOURS,
            },
        )
        await tx.audit.record(
            AuditEvent(
                **self_caller(user_id).audit_fields(),
                action="user.email_change_requested",
                subject_user_id=user_id,
                subject_email=user.email,
                data={"new": address},
            )
        )
    return {"detail": f"A link to confirm the change is on its way to {address}."}


async def compose_link_mail(accord: Context, message: OutboxMessage) -> tuple[str, str] | None:
    """Mint the link's token now (only its digest is kept) and write the mail."""
    payload = message.payload
    user_id = UUID(payload["user_id"])
    async with accord.store.transaction() as tx:
        user = await tx.users.get(user_id)
        if user is None or not user.is_live:
            return None
        token = _token(payload["new_email"])
        expires_at = accord.clock.now() + timedelta(hours=LINK_TTL_HOURS)
        await tx.one_time_tokens.insert(
            digest=secrets.digest(token),
            user_id=user_id,
            purpose=TokenPurpose.EMAIL_CHANGE,
            expires_at=expires_at,
        )
    return _mail(accord, payload, token, expires_at)


def _token(address: str) -> str:
    encoded = base64.urlsafe_b64encode(address.encode()).decode().rstrip("=")
    return f"{encoded}.{secrets.new_token()}"


def _address_of(token: str) -> str | None:
    head = (token or "").split(".", 1)[0]
    try:
        return base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def link_of(accord: Context, token: str) -> str:
    return f"{accord.settings.public_url.rstrip('/')}/confirm-email#token={token}"


def _mail(
    accord: Context, payload: dict[str, Any], token: str, expires_at: datetime
) -> tuple[str, str]:
    name = payload.get("full_name") or "there"
    until = expires_at.strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"Hello {name},\n\nSomeone (hopefully you) asked to use {payload['new_email']} for "
        f"their account. To confirm, open this link:\n\n  {link_of(accord, token)}\n\n"
        f"The link works once and expires at {until}. If you did not ask for this, ignore "
        "this message: nothing changes.\n"
    )
    return "Confirm your new e-mail address", body


async def confirm_email_change(accord: Context, token: str) -> dict[str, Any]:
    """Use a link: the change runs as one operation. ``TokenInvalid`` for a wrong, used or
    expired link; the change's own errors (``email_exists``, ``identity_exists``) otherwise."""
    _require_local(accord)
    address = _address_of(token)
    async with accord.store.transaction() as tx:
        found = await tx.one_time_tokens.find_live(secrets.digest(token or ""))
        usable = (
            found is not None
            and found.purpose == TokenPurpose.EMAIL_CHANGE
            and address is not None
            and await tx.one_time_tokens.consume(found.id)
        )
    if not usable or found is None or address is None:
        raise errors.TokenInvalid("The link is invalid, used or expired; ask for a new one.")
    return await profile.update_user(
        accord,
        found.user_id,
        profile.ProfileChange(email=address),
        caller=self_caller(found.user_id),
        idempotency_key=f"email-change-link:{found.id}",
    )

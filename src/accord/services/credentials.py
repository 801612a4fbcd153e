"""Credentials: set-password links, password setup, and (for the local IdP) sign-in.

Links are single-use tokens stored as SHA-256 digests (G9); the token itself exists only in the
mail. A link (or a temporary password) is consumed atomically before its effect, so exactly one
use succeeds, and setting a password revokes the user's other links. Setting the password goes
through the IdP port, so it works with every provider.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from accord.domain import errors, secrets
from accord.domain.emails import normalize_email
from accord.domain.model import TokenPurpose, UserStatus
from accord.domain.passwords import check_strength
from accord.domain.ports import VerifiesPasswords
from accord.domain.principals import Principal
from accord.domain.records import AuditEvent
from accord.domain.store import Transaction
from accord.services.context import Context
from accord.services.views import user_json


def setup_link(accord: Context, token: str) -> str:
    return f"{accord.settings.public_url.rstrip('/')}/set-password#token={token}"


async def issue_password_setup(accord: Context, user_id: UUID) -> tuple[str, datetime]:
    """Mint a set-password token for ``user_id``; return it (to mail) and its expiry."""
    async with accord.store.transaction() as tx:
        return await mint_password_setup(tx, accord, user_id)


async def mint_password_setup(
    tx: Transaction, accord: Context, user_id: UUID
) -> tuple[str, datetime]:
    """``issue_password_setup`` within ``tx``."""
    token, expires_at = _password_setup(accord)
    await tx.one_time_tokens.insert(
        digest=secrets.digest(token),
        user_id=user_id,
        purpose=TokenPurpose.PASSWORD_SETUP,
        expires_at=expires_at,
    )
    return token, expires_at


async def mint_password_setup_if_live(
    tx: Transaction, accord: Context, user_id: UUID
) -> tuple[str, datetime] | None:
    """``mint_password_setup`` for a user who may sign in (the mail sender's: a suspended or
    deprovisioned user gets no link); None, and nothing minted, for anyone else."""
    token, expires_at = _password_setup(accord)
    minted = await tx.one_time_tokens.insert_if_live(
        digest=secrets.digest(token),
        user_id=user_id,
        purpose=TokenPurpose.PASSWORD_SETUP,
        expires_at=expires_at,
    )
    return (token, expires_at) if minted else None


def _password_setup(accord: Context) -> tuple[str, datetime]:
    """A new set-password token and when it expires."""
    return secrets.new_token(), accord.clock.now() + timedelta(
        hours=accord.settings.invite_ttl_hours
    )


LINK_MAIL_KINDS = ("invitation", "password_setup")  # the mail that carries a set-password link


async def invite_again(tx: Transaction, accord: Context, user_id: UUID, dedupe_key: str) -> None:
    """A fresh set-password mail, to the user's address now, if they never set a password
    (after a reactivation, or an e-mail change that withdrew the links sent before)."""
    user = await tx.users.get(user_id)
    if user is None or user.email is None or user.status != UserStatus.PENDING:
        return
    await tx.outbox.enqueue(
        kind="invitation",
        dedupe_key=dedupe_key,
        recipient=user.email,
        payload={
            "user_id": str(user.id),
            "full_name": user.full_name,
            "valid_hours": accord.settings.invite_ttl_hours,
        },
    )


async def withdraw_links(tx: Transaction, user_id: UUID, address: str | None) -> None:
    """The user's set-password links stop working, and none still queued goes to ``address``."""
    await tx.one_time_tokens.delete_for_user(user_id)
    if address is not None:
        await tx.outbox.delete_unsent(address, kinds=LINK_MAIL_KINDS)


async def request_password_setup(accord: Context, email: str) -> None:
    """Queue a set-password mail if the account exists; say nothing either way."""
    try:
        address = normalize_email(email)
    except errors.EmailInvalid:
        return
    async with accord.store.transaction() as tx:
        user = await tx.users.by_email(address)
        if user is None or not user.is_live:
            return
        # One mail per user per quarter hour, however often the form is sent.
        window = int(accord.clock.now().timestamp() // 900)
        await tx.outbox.enqueue(
            kind="password_setup",
            dedupe_key=f"password_setup:{user.id}:{window}",
            recipient=address,
            payload={"user_id": str(user.id), "valid_hours": accord.settings.invite_ttl_hours},
        )


async def complete_password_setup(accord: Context, token: str, new_password: str) -> dict[str, Any]:
    """Set the password that a link's owner chose; the link is used up first (G9).

    The link is consumed before the IdP call, so of concurrent uses exactly one reaches the IdP
    and it is that caller's password that works. If the IdP refuses the password, or is down
    before applying it, the link is given back to be used again.
    """
    check_chosen_password(accord, new_password)  # before the link is used: a weak choice keeps it
    digest = secrets.digest(token or "")
    async with accord.store.transaction() as tx:
        found = await tx.one_time_tokens.find_live(digest)
        link = found and await tx.links.get(found.user_id, accord.idp.name)
        if found is not None and found.purpose != TokenPurpose.PASSWORD_SETUP:
            found = link = None  # another purpose's link (an e-mail change's) sets no password
        if found is None or not link or not await tx.one_time_tokens.consume(found.id):
            raise errors.TokenInvalid()
    try:
        await _set_password(accord, link.remote_id, new_password)
    except (errors.PasswordRejected, errors.ProviderUnavailable) as failed:
        if not isinstance(failed, errors.OutcomeUnknown):  # it may have been applied: keep used
            async with accord.store.transaction() as tx:
                await tx.one_time_tokens.release(found.id)
        raise
    async with accord.store.transaction() as tx:
        return await _password_chosen(tx, found.user_id, "user.password_set")


def check_chosen_password(accord: Context, password: str, *user_inputs: str) -> None:
    """PasswordTooWeak when a password a person chose is below ``password.min_score``."""
    check_strength(
        password or "", min_score=accord.settings.password.min_score, user_inputs=user_inputs
    )


async def _set_password(accord: Context, remote_id: str, password: str) -> None:
    try:
        await accord.idp.update(remote_id, password=password)
    except errors.RemoteRejected as exc:
        raise errors.PasswordRejected(exc.message) from None


async def _password_chosen(tx: Transaction, user_id: UUID, action: str) -> dict[str, Any]:
    """After a chosen password reached the IdP: every other set-password link of the user is
    revoked (its temporary password was replaced at the IdP), and the user is active."""
    await tx.one_time_tokens.delete_for_user(user_id)
    return await _activate(tx, user_id, action)


async def _activate(tx: Transaction, user_id: UUID, action: str) -> dict[str, Any]:
    """The user, active now (a pending one) and with no password change required."""
    user = await tx.users.get(user_id, lock=True)
    if user is None or user.email is None:  # gone, or deprovisioned meanwhile
        raise errors.TokenInvalid()
    status = UserStatus.ACTIVE if user.status == UserStatus.PENDING else user.status
    await tx.users.update(user_id, status=status, require_password_change=False)
    # The link or the temporary password proved the person: they are the principal.
    by = Principal.user(user_id)
    await tx.audit.record(
        AuditEvent(
            actor=by.label,
            principal=by,
            action=action,
            subject_user_id=user_id,
            subject_email=user.email,
        )
    )
    view = await tx.users.view(user_id)
    return user_json(view) if view else {}


def _local(accord: Context) -> VerifiesPasswords:
    if not isinstance(accord.idp, VerifiesPasswords):
        raise errors.Forbidden(
            f"Sign-in is handled by the identity provider ({accord.idp.name}), not by accord."
        )
    return accord.idp


async def verify_password(accord: Context, email: str, password: str) -> dict[str, Any]:
    """The user whose e-mail and password these are (local IdP); raise InvalidCredentials."""
    address = normalize_email(email)
    verified = await _local(accord).verify_password(address, password or "")
    if verified is None:
        raise errors.InvalidCredentials()
    identity, temporary = verified
    async with accord.store.transaction() as tx:
        user = await tx.users.by_email(address)
        view = await tx.users.view(user.id) if user is not None else None
    if user is not None and (user.status == UserStatus.SUSPENDED or not identity.enabled):
        raise errors.UserSuspended()  # the password was right: say why, not "wrong password"
    if user is None or view is None or not user.is_live:
        raise errors.InvalidCredentials()
    if temporary or user.require_password_change:
        raise errors.PasswordChangeRequired()
    return user_json(view)


async def replace_temporary_password(
    accord: Context, email: str, temporary_password: str, new_password: str
) -> dict[str, Any]:
    """Swap a temporary password for one the person chose (local IdP), in one atomic step:
    of concurrent swaps of one temporary password exactly one succeeds."""
    address = normalize_email(email)
    if new_password == temporary_password:
        raise errors.PasswordRejected("The new password must differ from the temporary one.")
    check_chosen_password(accord, new_password, address)
    try:
        swapped = await _local(accord).replace_temporary_password(
            address, temporary_password or "", new_password
        )
    except errors.RemoteRejected as exc:
        raise errors.PasswordRejected(exc.message) from None
    if swapped is None:
        raise errors.InvalidCredentials()
    async with accord.store.transaction() as tx:
        user = await tx.users.by_email(address)
        if user is None:
            raise errors.InvalidCredentials()
        return await _password_chosen(tx, user.id, "user.temporary_password_replaced")

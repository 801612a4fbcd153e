"""Credentials: set-password links, password setup, and (for the local IdP) sign-in.

Links are single-use tokens stored as SHA-256 digests (G9); the token itself exists only in the
mail. Setting the password goes through the IdP port, so it works with every provider.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import func, insert, select, update

from accord.adapters.db import repository
from accord.adapters.db.tables import one_time_tokens
from accord.adapters.idp.local import LocalProvider
from accord.domain import errors, secrets
from accord.domain.emails import normalize_email
from accord.domain.model import TokenPurpose, UserStatus

if TYPE_CHECKING:
    from accord.bootstrap import Accord


def setup_link(accord: Accord, token: str) -> str:
    return f"{accord.settings.public_url.rstrip('/')}/set-password#token={token}"


async def issue_password_setup(accord: Accord, user_id: UUID) -> tuple[str, datetime]:
    """Mint a set-password token for ``user_id``; return it (to mail) and its expiry."""
    token = secrets.new_token()
    expires_at = datetime.now(UTC) + timedelta(hours=accord.settings.invite_ttl_hours)
    async with accord.db.transaction() as conn:
        await conn.execute(
            insert(one_time_tokens).values(
                digest=secrets.digest(token),
                user_id=user_id,
                purpose=TokenPurpose.PASSWORD_SETUP,
                expires_at=expires_at,
            )
        )
    return token, expires_at


async def request_password_setup(accord: Accord, email: str) -> None:
    """Queue a set-password mail if the account exists; say nothing either way."""
    try:
        address = normalize_email(email)
    except errors.EmailInvalid:
        return
    async with accord.db.transaction() as conn:
        user = await repository.user_row_by_email(conn, address)
        if user is None or user["status"] not in (UserStatus.PENDING, UserStatus.ACTIVE):
            return
        # One mail per user per quarter hour, however often the form is sent.
        window = int(datetime.now(UTC).timestamp() // 900)
        await repository.enqueue_mail(
            conn,
            kind="password_setup",
            dedupe_key=f"password_setup:{user['id']}:{window}",
            recipient=address,
            payload={"user_id": str(user["id"]), "valid_hours": accord.settings.invite_ttl_hours},
        )


async def complete_password_setup(accord: Accord, token: str, new_password: str) -> dict[str, Any]:
    """Set the password that a link's owner chose; the link is then used up."""
    digest = secrets.digest(token or "")
    async with accord.db.transaction() as conn:
        row = (
            (
                await conn.execute(
                    select(one_time_tokens).where(
                        one_time_tokens.c.digest == digest,
                        one_time_tokens.c.used_at.is_(None),
                        one_time_tokens.c.expires_at > func.now(),
                    )
                )
            )
            .mappings()
            .first()
        )
        link = row and await repository.get_link(conn, row["user_id"], accord.idp.name)
    if row is None or link is None:
        raise errors.TokenInvalid()
    await _set_password(accord, link["remote_id"], new_password)
    async with accord.db.transaction() as conn:
        used = await conn.execute(
            update(one_time_tokens)
            .where(one_time_tokens.c.id == row["id"], one_time_tokens.c.used_at.is_(None))
            .values(used_at=func.now())
        )
        if used.rowcount == 0:
            raise errors.TokenInvalid()
        await _activate(conn, row["user_id"], "user.password_set")
        return await repository.get_user(conn, row["user_id"]) or {}


async def _set_password(accord: Accord, remote_id: str, password: str) -> None:
    try:
        await accord.idp.update(remote_id, password=password)
    except errors.RemoteRejected as exc:
        raise errors.PasswordRejected(exc.message) from None


async def _activate(conn: Any, user_id: UUID, action: str) -> None:
    user = await repository.user_row(conn, user_id, lock=True)
    if user is None:
        raise errors.TokenInvalid()
    status = UserStatus.ACTIVE if user["status"] == UserStatus.PENDING else user["status"]
    await repository.set_user(conn, user_id, status=status, require_password_change=False)
    await repository.record_audit(
        conn,
        actor=user["email"],
        action=action,
        subject_user_id=user_id,
        subject_email=user["email"],
    )


def _local(accord: Accord) -> LocalProvider:
    if not isinstance(accord.idp, LocalProvider):
        raise errors.Forbidden(
            f"Sign-in is handled by the identity provider ({accord.idp.name}), not by accord."
        )
    return accord.idp


async def verify_password(accord: Accord, email: str, password: str) -> dict[str, Any]:
    """The user whose e-mail and password these are (local IdP); raise InvalidCredentials."""
    address = normalize_email(email)
    verified = await _local(accord).verify_password(address, password or "")
    if verified is None:
        raise errors.InvalidCredentials()
    _, temporary = verified
    async with accord.db.transaction() as conn:
        user = await repository.user_row_by_email(conn, address)
    if user is None or user["status"] not in (UserStatus.PENDING, UserStatus.ACTIVE):
        raise errors.InvalidCredentials()
    if temporary or user["require_password_change"]:
        raise errors.PasswordChangeRequired()
    async with accord.db.transaction() as conn:
        return await repository.get_user(conn, user["id"]) or {}


async def replace_temporary_password(
    accord: Accord, email: str, temporary_password: str, new_password: str
) -> dict[str, Any]:
    """Swap a temporary password for one the person chose (local IdP)."""
    address = normalize_email(email)
    local = _local(accord)
    verified = await local.verify_password(address, temporary_password or "")
    if verified is None:
        raise errors.InvalidCredentials()
    if new_password == temporary_password:
        raise errors.PasswordRejected("The new password must differ from the temporary one.")
    await _set_password(accord, verified[0].remote_id, new_password)
    async with accord.db.transaction() as conn:
        user = await repository.user_row_by_email(conn, address)
        if user is None:
            raise errors.InvalidCredentials()
        await _activate(conn, user["id"], "user.temporary_password_replaced")
        return await repository.get_user(conn, user["id"]) or {}

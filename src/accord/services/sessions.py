"""Sessions of the local identity provider: whether a login token still stands for someone.

A login token (``tokens.issue_login_token``) is checked on each use, not only its signature and
expiry: its user must still be live in accord, and the local IdP must still accept the session
(suspension disables the identity and ends every session issued before it, for good: a
reactivated user signs in again).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from accord.domain import errors
from accord.domain.model import UserStatus
from accord.domain.ports import ChecksSessions
from accord.services.context import Context
from accord.services.tokens import verify_login_token
from accord.services.views import user_json

ENDED = "The session has ended: sign in again."


async def current_user(accord: Context, login_token: str) -> dict[str, Any]:
    """The user a login token stands for, if its session still holds (``Unauthenticated``;
    ``UserSuspended`` while the user is suspended)."""
    claims = verify_login_token(accord, login_token)
    try:
        user_id = UUID(str(claims.get("sub")))
    except ValueError:
        raise errors.Unauthenticated(ENDED) from None
    async with accord.store.transaction() as tx:
        user = await tx.users.get(user_id)
        view = await tx.users.view(user_id) if user is not None else None
        link = await tx.links.get(user_id, accord.idp.name) if user is not None else None
    if user is not None and user.status == UserStatus.SUSPENDED:
        raise errors.UserSuspended()
    if user is None or view is None or link is None or not user.is_live:
        raise errors.Unauthenticated(ENDED)
    if isinstance(accord.idp, ChecksSessions):
        micros = claims.get("iat_us")
        if not isinstance(micros, int):
            micros = int(claims.get("iat") or 0) * 1_000_000
        issued_at = datetime.fromtimestamp(micros / 1_000_000, UTC)
        if not await accord.idp.session_allowed(link.remote_id, issued_at):
            raise errors.Unauthenticated(ENDED)
    return user_json(view)

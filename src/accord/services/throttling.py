"""Throttling: what a stranger's attempts cost them, counted per account and client address.

- Every public request (registration, its verification, sign-in, password setup and
  replacement) counts against ``throttle.public_requests_per_address``; past it, 429
  ``too_many_requests``.
- A failed sign-in counts against the account from this address, the account from anywhere,
  and the address for any account; while one of those limits is used up, sign-in answers 429
  ``too_many_attempts`` before any password is checked. Every limit is a moving window, so it
  lifts by itself once the failures stop: a stranger cannot lock a person out for good, and
  from another address than the person's only by exhausting the (much larger) account-wide
  limit. A successful sign-in clears the account's counters.

The counters are a port (``Throttle``), shared through PostgreSQL by every process.
"""

from __future__ import annotations

from typing import Any

from accord.domain import errors
from accord.domain.emails import normalize_email
from accord.services import credentials
from accord.services.context import Context


def _seconds(wait: float) -> str:
    return f"{int(wait + 0.999)} seconds"


async def admit_public(accord: Context, client: str) -> None:
    """Count one public request from ``client``; TooManyRequests past the address's limit."""
    settings = accord.settings.throttle
    if accord.throttle is None or not settings.enabled:
        return
    wait = await accord.throttle.hit(f"public:{client}", settings.public_requests_per_address)
    if wait is not None:
        raise errors.TooManyRequests(
            f"Too many requests from your address: try again in {_seconds(wait)}.",
            retry_after=wait,
        )


def _login_limits(accord: Context, address: str, client: str) -> list[tuple[str, str]]:
    """The (key, rule) pairs a failed sign-in counts against; the account's come first."""
    settings = accord.settings.throttle
    return [
        (f"login:{address}:{client}", settings.login_failures_per_account_and_address),
        (f"login:{address}", settings.login_failures_per_account),
        (f"login-from:{client}", settings.login_failures_per_address),
    ]


async def sign_in(accord: Context, email: str, password: str, client: str) -> dict[str, Any]:
    """``credentials.verify_password``, refused while the account or address has failed too
    often (TooManyAttempts, before any password is checked)."""
    throttle = accord.throttle
    if throttle is None or not accord.settings.throttle.enabled:
        return await credentials.verify_password(accord, email, password)
    counted = _login_limits(accord, normalize_email(email), client)
    waits = [w for key, rule in counted if (w := await throttle.blocked(key, rule)) is not None]
    if waits:
        raise errors.TooManyAttempts(
            f"Too many failed sign-ins: try again in {_seconds(max(waits))}, or reset the "
            "password with a set-password link.",
            retry_after=max(waits),
        )
    try:
        user = await credentials.verify_password(accord, email, password)
    except errors.InvalidCredentials:
        for key, rule in counted:
            await throttle.hit(key, rule)
        raise
    except errors.PasswordChangeRequired:
        await _clear_account(accord, counted)  # the password was right
        raise
    await _clear_account(accord, counted)
    return user


async def _clear_account(accord: Context, counted: list[tuple[str, str]]) -> None:
    assert accord.throttle is not None
    for key, rule in counted[:2]:
        await accord.throttle.reset(key, rule)

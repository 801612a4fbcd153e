"""``auth.users`` in memory: users as GoTrue stores and returns them, metadata merges, and the
``LIKE`` filter of the admin list (docs/idp/supabase.md#no-lookup-by-e-mail)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

AUD = "authenticated"


def timestamp() -> str:
    """A timestamp as GoTrue writes them (microseconds, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def go_duration(text: str) -> timedelta | None:
    """Go's ``time.ParseDuration`` for the non-negative durations GoTrue reads as
    ``ban_duration`` ("876000h", "2h45m"); None when it is not one."""
    if not text or _GO_DURATION.sub("", text) != "":
        return None
    seconds = sum(float(n) * _GO_UNITS[u] for n, u in _GO_DURATION.findall(text))
    return timedelta(seconds=seconds)


def _merge(target: dict[str, Any], updates: dict[str, Any]) -> None:
    for key, value in updates.items():  # top-level merge, null deletes (UpdateUserMetaData)
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value


def like(pattern: str, text: str, *, ignore_case: bool = False) -> bool:
    """PostgreSQL ``text LIKE pattern`` (``%``, ``_``, backslash escapes)."""
    parts, chars = [], iter(pattern)
    for char in chars:
        if char == "\\":
            parts.append(re.escape(next(chars, "\\")))
        else:
            parts.append({"%": ".*", "_": "."}.get(char) or re.escape(char))
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch("".join(parts), text, flags) is not None


def _matches(pattern: str, user: dict[str, Any]) -> bool:
    name = user["user_metadata"].get("full_name")  # ->> of a missing key is NULL: no match
    return like(pattern, user["email"]) or (
        name is not None and like(pattern, str(name), ignore_case=True)
    )


def _identity(user_id: str, email: str, now: str) -> dict[str, Any]:
    data = {"sub": user_id, "email": email, "email_verified": False, "phone_verified": False}
    return {
        "identity_id": str(uuid.uuid4()),
        "id": user_id,
        "user_id": user_id,
        "identity_data": data,
        "provider": "email",
        "last_sign_in_at": now,
        "created_at": now,
        "updated_at": now,
        "email": email,
    }


class GoTrueStore:
    """``auth.users`` in memory, in creation order."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}

    def owner(self, field: str, value: str) -> str | None:
        """The id of the user whose ``field`` (email or phone) is ``value``."""
        return next((i for i, u in self.users.items() if value and u[field] == value), None)

    def add(self, params: dict[str, Any]) -> dict[str, Any]:
        """Insert a user built from admin-create ``params`` (already validated)."""
        now, user_id = timestamp(), params.get("id") or str(uuid.uuid4())
        email, phone = params.get("email") or "", params.get("phone") or ""
        providers = [p for p, v in (("email", email), ("phone", phone)) if v]
        user: dict[str, Any] = {
            "id": user_id,
            "aud": params.get("aud") or AUD,
            "role": params.get("role") or AUD,
            "email": email,
            "phone": phone,
            "app_metadata": {"provider": providers[0], "providers": providers},
            "user_metadata": dict(params.get("user_metadata") or {}),
            "identities": [_identity(user_id, email, now)] if email else [],
            "created_at": now,
            "updated_at": now,
            "is_anonymous": False,
        }
        _merge(user["app_metadata"], params.get("app_metadata") or {})
        if params.get("email_confirm"):
            self.confirm(user, now)
        self.users[user_id] = user
        return user

    @staticmethod
    def confirm(user: dict[str, Any], now: str) -> None:
        user.update(email_confirmed_at=now, confirmed_at=now)
        user["user_metadata"]["email_verified"] = True  # User.Confirm

    def update(self, user: dict[str, Any], params: dict[str, Any]) -> None:
        now = timestamp()
        if params.get("role"):
            user["role"] = params["role"]
        if params.get("email_confirm"):
            self.confirm(user, now)
        if params.get("email"):
            user["email"] = params["email"]
            for identity in user["identities"]:
                identity["email"] = identity["identity_data"]["email"] = params["email"]
        if params.get("ban_duration"):
            self.ban(user, params["ban_duration"])
        _merge(user["app_metadata"], params.get("app_metadata") or {})
        _merge(user["user_metadata"], params.get("user_metadata") or {})
        user["updated_at"] = now

    @staticmethod
    def ban(user: dict[str, Any], ban_duration: str) -> None:
        """``User.Ban``: "none" lifts the ban, a duration sets ``banned_until`` from now (the
        duration was checked by the caller)."""
        duration = timedelta(0) if ban_duration == "none" else go_duration(ban_duration)
        if not duration:
            user.pop("banned_until", None)
            return
        until = datetime.now(UTC) + duration
        user["banned_until"] = until.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def matching(self, filter_text: str) -> list[dict[str, Any]]:
        if not filter_text:
            return list(self.users.values())
        pattern = f"%{filter_text}%"  # spliced in unescaped (FindUsersInAudience)
        return [u for u in self.users.values() if _matches(pattern, u)]

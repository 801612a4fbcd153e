"""``auth.users`` in memory: users as GoTrue stores and returns them, metadata merges, and the
``LIKE`` filter of the admin list (docs/idp/supabase.md#no-lookup-by-e-mail)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

AUD = "authenticated"


def timestamp() -> str:
    """A timestamp as GoTrue writes them (microseconds, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        _merge(user["app_metadata"], params.get("app_metadata") or {})
        _merge(user["user_metadata"], params.get("user_metadata") or {})
        user["updated_at"] = now

    def matching(self, filter_text: str) -> list[dict[str, Any]]:
        if not filter_text:
            return list(self.users.values())
        pattern = f"%{filter_text}%"  # spliced in unescaped (FindUsersInAudience)
        return [u for u in self.users.values() if _matches(pattern, u)]

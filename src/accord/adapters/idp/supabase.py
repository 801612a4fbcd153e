"""Supabase Auth (GoTrue) admin API over httpx. Vendor facts: ``docs/idp/supabase.md``.

Ids. accord creates every user with ``id`` = accord's user id (GoTrue accepts a caller-chosen
UUID: docs/idp/supabase.md#caller-chosen-id), so the engine's first lookup is
``get(str(user_id))``: a primary-key read, one request, O(1) on the server, and the answer to
"did my earlier create land?".

Exact e-mail lookup (``find_by_email``), for users accord did not create and for adopting after
``email_exists``. GoTrue has no get-by-e-mail endpoint (docs/idp/supabase.md#no-lookup-by-e-mail).
Its list endpoint takes ``filter=x`` and runs ``email LIKE '%x%' OR user_metadata->>'full_name'
ILIKE '%x%'`` with ``x`` spliced in unescaped (``internal/models/user.go`` FindUsersInAudience).
So:

- the adapter escapes ``\\``, ``%`` and ``_`` with a backslash (PostgreSQL's default LIKE
  escape), which turns the filter into a literal substring match. Unescaped, ``a_b@x.com`` would
  also match ``axb@x.com`` and a ``%`` in the local part would match every user;
- it keeps only candidates whose e-mail equals the (lower-cased) query: GoTrue lower-cases
  e-mails on write (docs/idp/supabase.md#admin-create), and substring and full-name matches are
  not the user;
- it reads every page of candidates (100 per page), never ``per_page=1``.

Cost: one request per lookup in practice (a second only with more than 100 candidates), but on
the server a sequential scan of ``auth.users`` (a leading-wildcard LIKE uses no index) plus the
COUNT(*) behind ``X-Total-Count``: milliseconds at 10k users, tens of ms at 100k+. That is why
the engine looks up by id first and by e-mail only when the id is unknown or a conflict needs
resolving; nothing pages through every user.

Errors (the port's contract): 5xx, timeouts and connection failures are ``ProviderUnavailable``;
on a write whose request may have reached GoTrue they are ``OutcomeUnknown`` (resolved by a
lookup, never by writing again: this module never retries anything); 429 carries Retry-After.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx

from accord.adapters.idp.http import json_object, retry_after_seconds, was_sent
from accord.config import SupabaseSettings
from accord.domain.errors import (
    ConfigurationError,
    OutcomeUnknown,
    ProviderMisconfigured,
    ProviderUnavailable,
    RemoteConflict,
    RemoteNotFound,
    RemoteRejected,
)
from accord.domain.ports import NewRemoteUser, RemoteUser

# Errors then carry string codes in {"code", "message"} (docs/idp/supabase.md#error-bodies).
API_VERSION = "2024-01-01"
# GoTrue's admin create skips the password policy (docs/idp/supabase.md#admin-create); accord
# applies its own, as LocalProvider does.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_BYTES = 72  # bcrypt's limit: GoTrue answers 400 above it
LOOKUP_PAGE_SIZE = 100
CONFLICT_CODES = frozenset({"email_exists", "phone_exists", "user_already_exists"})
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# GoTrue has no "disabled" flag: a ban for a duration does it (docs/idp/supabase.md#banning-users).
# 100 years, Go duration syntax; "none" lifts a ban.
BAN_FOREVER = "876000h"
BAN_LIFTED = "none"

_MISCONFIGURED_HINTS = {
    "no_authorization": "no Bearer token reached Supabase Auth",
    # Also what an sb_secret_ key gets at GoTrue (docs/idp/supabase.md#admin-credentials).
    "bad_jwt": "the key is not a valid JWT for this project (another project's? rotated?)",
    "not_admin": "the key is not a service_role key (is it the anon key?)",
}


def like_literal(text: str) -> str:
    """``text`` escaped so that GoTrue's ``LIKE '%text%'`` matches it literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _remote(body: dict[str, Any]) -> RemoteUser:
    user_meta = body.get("user_metadata") or {}
    app_meta = body.get("app_metadata") or {}
    return RemoteUser(
        remote_id=body["id"],
        email=body.get("email") or "",
        full_name=user_meta.get("full_name"),
        accord_user_id=app_meta.get("accord_user_id"),
        enabled=not _banned(body.get("banned_until")),
    )


def _banned(banned_until: Any) -> bool:
    """Whether ``banned_until`` (RFC 3339, or absent) is still in the future."""
    if not isinstance(banned_until, str) or not banned_until:
        return False
    try:
        until = datetime.fromisoformat(banned_until.replace("Z", "+00:00"))
    except ValueError:
        return True  # unreadable: treat as banned, the safer reading
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return until > datetime.now(UTC)


def _error_code(body: dict[str, Any]) -> str | None:
    # Either shape (docs/idp/supabase.md#error-bodies): 2024-01-01 {"code": str, "message"},
    # initial {"code": int, "error_code", "msg"}.
    code = body.get("code") if isinstance(body.get("code"), str) else body.get("error_code")
    return code if isinstance(code, str) else None


def _error_message(body: dict[str, Any]) -> str:
    return str(body.get("message") or body.get("msg") or body.get("error") or "")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RemoteRejected(
            f"The password must be at least {MIN_PASSWORD_LENGTH} characters long."
        )
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise RemoteRejected(
            f"Supabase Auth accepts passwords of at most {MAX_PASSWORD_BYTES} bytes."
        )


class SupabaseProvider:
    """The ``supabase`` IdP: GoTrue's admin API with the project's service_role key."""

    name = "supabase"

    def __init__(
        self,
        url: str,
        service_role_key: str,
        *,
        timeout_seconds: float = 10.0,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base = url.rstrip("/")
        # A hosted project serves Auth under /auth/v1 (docs/idp/supabase.md#base-url).
        self._base = base if base.endswith("/auth/v1") else f"{base}/auth/v1"
        # The hosted gateway wants the key as apikey, GoTrue as a Bearer JWT
        # (docs/idp/supabase.md#admin-credentials).
        self._headers = {
            "apikey": service_role_key,
            "Authorization": f"Bearer {service_role_key}",
            "X-Supabase-Api-Version": API_VERSION,
        }
        self._timeout = httpx.Timeout(timeout_seconds)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(transport=transport, timeout=self._timeout)

    @classmethod
    def from_settings(cls, settings: SupabaseSettings) -> SupabaseProvider:
        """Build from ``ACCORD_SUPABASE__*`` settings."""
        if not settings.url or settings.service_role_key is None:
            raise ConfigurationError(
                "ACCORD_IDP=supabase needs ACCORD_SUPABASE__URL (the project URL) and "
                "ACCORD_SUPABASE__SERVICE_ROLE_KEY (Project Settings > API > service_role)."
            )
        return cls(
            settings.url,
            settings.service_role_key.get_secret_value(),
            timeout_seconds=settings.timeout_seconds,
        )

    # -- the port ------------------------------------------------------------------------------

    async def find_by_email(self, email: str) -> RemoteUser | None:
        wanted = email.strip().lower()
        page = 1
        while True:
            users, more = await self._list(page, LOOKUP_PAGE_SIZE, filter=like_literal(wanted))
            match = next((u for u in users if (u.get("email") or "").lower() == wanted), None)
            if match is not None:
                return _remote(match)
            if not more:
                return None
            page += 1

    async def get(self, remote_id: str) -> RemoteUser:
        return _remote(await self._request("GET", self._user_path(remote_id)))

    async def create(self, user: NewRemoteUser) -> RemoteUser:
        if user.password is not None:
            _check_password(user.password)
        body: dict[str, Any] = {
            # Caller-chosen, so retries are recognizable (docs/idp/supabase.md#caller-chosen-id)
            "id": str(user.user_id),
            "email": user.email,
            "email_confirm": True,  # accord's own invitation proves the address
            "user_metadata": {"full_name": user.full_name},
            # Admin-writable only (docs/idp/supabase.md#app-metadata).
            "app_metadata": {"accord_user_id": str(user.user_id)},
        }
        if user.password is not None:
            body["password"] = user.password  # else GoTrue sets a random one
        return _remote(await self._request("POST", "/admin/users", json=body))

    async def update(
        self,
        remote_id: str,
        *,
        email: str | None = None,
        full_name: str | None = None,
        password: str | None = None,
    ) -> RemoteUser:
        body: dict[str, Any] = {}
        if email is not None:
            await self._ensure_email_free(remote_id, email)
            body.update(email=email, email_confirm=True)
        if full_name is not None:
            # Top-level keys merge: other metadata stays (docs/idp/supabase.md#admin-update).
            body["user_metadata"] = {"full_name": full_name}
        if password is not None:
            _check_password(password)
            body["password"] = password  # in the same PUT
        return _remote(await self._request("PUT", self._user_path(remote_id), json=body))

    async def set_enabled(self, remote_id: str, enabled: bool) -> RemoteUser:
        # A ban refuses sign-in and token refresh (docs/idp/supabase.md#banning-users).
        body = {"ban_duration": BAN_LIFTED if enabled else BAN_FOREVER}
        return _remote(await self._request("PUT", self._user_path(remote_id), json=body))

    async def delete(self, remote_id: str) -> None:
        try:
            await self._request("DELETE", self._user_path(remote_id))  # 200 {}
        except RemoteNotFound:
            return  # unknown → 404 (docs/idp/supabase.md#delete); the port's delete is idempotent

    async def iter_users(self, *, page_size: int = 100) -> AsyncIterator[RemoteUser]:
        page = 1
        while True:
            users, more = await self._list(page, page_size)
            for body in users:
                yield _remote(body)
            if not more:
                return
            page += 1

    async def check(self) -> None:
        # A primary-key read of an id nobody has: authenticated and O(1) (a list would COUNT(*)
        # every user); GoTrue answers it 404 user_not_found, a URL without GoTrue a bare 404.
        try:
            await self._send("GET", self._user_path(str(UUID(int=0))))
        except RemoteNotFound as exc:
            if exc.details.get("code") == "user_not_found":
                return
            raise ProviderMisconfigured(
                f"No Supabase Auth admin API at {self._base}: check ACCORD_SUPABASE__URL "
                "(the project URL, e.g. https://PROJECT.supabase.co)."
            ) from exc

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -- HTTP ----------------------------------------------------------------------------------

    @staticmethod
    def _user_path(remote_id: str) -> str:
        return f"/admin/users/{quote(remote_id, safe='')}"

    async def _ensure_email_free(self, remote_id: str, email: str) -> None:
        # An update to a taken e-mail is a bare 500: check first
        # (docs/idp/supabase.md#update-to-a-taken-e-mail).
        holder = await self.find_by_email(email)
        if holder is not None and holder.remote_id != remote_id:
            raise RemoteConflict(f"Supabase Auth already has a user with the e-mail {email}.")

    async def _list(
        self, page: int, per_page: int, **extra: str
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page (1-based), oldest first, and whether another may follow."""
        params = {"page": str(page), "per_page": str(per_page), "sort": "created_at asc", **extra}
        # Oldest first: users created during a walk land on later pages, not shift earlier ones.
        response = await self._send("GET", "/admin/users", params=params)
        users = json_object(response).get("users") or []
        link = response.headers.get("link")
        # Link lacks rel="next" on the last page; without a Link, a short page is the last
        # (docs/idp/supabase.md#listing-and-pagination).
        more = len(users) >= per_page and (link is None or 'rel="next"' in link)
        return users, more

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return json_object(await self._send(method, path, **kwargs))

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, never retried; every failure becomes a port error."""
        try:
            response = await self._client.request(
                method, self._base + path, headers=self._headers, timeout=self._timeout, **kwargs
            )
        except httpx.TransportError as exc:
            raise self._transport_error(method, exc) from exc
        if response.is_success:
            return response
        raise self._status_error(method, response)

    def _transport_error(self, method: str, exc: httpx.TransportError) -> Exception:
        what = f"Supabase Auth: {method} failed: {type(exc).__name__}"
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return ProviderMisconfigured(f"{what}; check ACCORD_SUPABASE__URL ({self._base}).")
        # Nothing was sent when the connection never opened: the write did not happen.
        if method in WRITES and was_sent(exc):
            return OutcomeUnknown(f"{what}; the change may or may not have been applied.")
        return ProviderUnavailable(f"{what}.")

    def _status_error(self, method: str, response: httpx.Response) -> Exception:
        status, body = response.status_code, json_object(response)
        code, message = _error_code(body), _error_message(body)
        detail = f"Supabase Auth answered {status}{f' {code}' if code else ''}"
        detail += f": {message}" if message else "."
        if status in (401, 403):
            return self._misconfigured(status, code, message)
        if status == 429:
            retry = retry_after_seconds(response.headers.get("retry-after"))
            return ProviderUnavailable(detail, retry_after=retry)
        if status >= 500:
            # 503: nothing was processed. 500/502/504 on a write may hide a commit (a lost
            # answer, or a duplicate id, which GoTrue reports as a bare 500: admin.go).
            if method in WRITES and status != 503:
                return OutcomeUnknown(f"{detail}; the change may or may not have been applied.")
            return ProviderUnavailable(detail)
        if status == 404:
            return RemoteNotFound(detail, code=code)
        if code in CONFLICT_CODES:  # 422 email_exists (docs/idp/supabase.md#error-bodies)
            return RemoteConflict(detail)
        return RemoteRejected(detail)  # 400 validation_failed, 422 weak_password, ...

    def _misconfigured(self, status: int, code: str | None, message: str) -> ProviderMisconfigured:
        # The response never contains the key and neither does this message (G9).
        hint = _MISCONFIGURED_HINTS.get(code or "", message or "the key was refused")
        if code is None and status == 401:
            hint = f"the API gateway refused the apikey header ({message or 'no detail'})"
        return ProviderMisconfigured(
            f"Supabase Auth at {self._base} refused accord's credentials ({status}"
            f"{' ' + code if code else ''}): {hint}. Set ACCORD_SUPABASE__SERVICE_ROLE_KEY "
            "to the project's service_role key (Project Settings > API)."
        )

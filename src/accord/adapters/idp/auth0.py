"""Auth0, through the Management API v2, spoken with httpx.

The Auth0 facts this module relies on are in ``docs/idp/auth0.md``; links name its headings.

- **Token.** Client-credentials grant at ``/oauth/token``, cached and refreshed 10 s before it
  expires (docs/idp/auth0.md#management-api-token). A 401 from the API means the request was not
  run, so it is resent once with a new token; nothing else is ever retried here: retries are the
  engine's decision.
- **Ids.** ``create`` chooses the id: ``user_id`` = accord's user id as hex, so the remote id is
  ``auth0|<hex>`` and a retried create answers 409 instead of making a second user
  (docs/idp/auth0.md#user-ids).
- **Lookup.** ``GET /api/v2/users-by-email``: immediately consistent, exact and case-sensitive on
  the stored value, across connections (docs/idp/auth0.md#lookup-by-e-mail). accord asks with
  normalized (lower-case) e-mails, which is how Auth0 stores database-connection users
  (docs/idp/auth0.md#stored-e-mail-case); results are kept only if their e-mail is equal and an
  identity is on the configured connection. A user of another connection (social, enterprise)
  whose e-mail kept its upper case is not found: accord does not manage it.
- **Listing.** ``iter_users`` runs a bulk export job (``POST /api/v2/jobs/users-exports``, poll
  ``GET /api/v2/jobs/{id}``, stream the gzipped NDJSON file at the job's ``location``). Not
  ``GET /api/v2/users``: its paging stops at 1,000 results and it reads an eventually consistent
  search index (docs/idp/auth0.md#listing-and-paging-limits), so a listing would miss both the
  tail and fresh users; partitioning the search by ``created_at`` or ``user_id`` ranges still
  reads the lagging index and depends on Lucene range behaviour that is not documented for those
  fields, so the emulator could only guess it. The export is what Auth0 documents for full
  listings (docs/idp/auth0.md#bulk-user-export; the SDK's docstring says the same), has no cap,
  and the emulator serves it as documented. The file is decompressed and parsed line by line, so
  memory stays bounded; ``page_size`` has no meaning here. The signed ``location`` is fetched
  without the bearer token: it is a storage host, not the tenant.
- **Errors** (docs/idp/auth0.md#error-bodies, #rate-limits): 429 →
  ProviderUnavailable(retry_after); 5xx, timeouts, refused connections → ProviderUnavailable; a
  write that was sent but not answered (read timeout, dropped connection, 504) → OutcomeUnknown;
  409 → RemoteConflict; 404 → RemoteNotFound; 401/403 and any ``/oauth/token`` refusal →
  ProviderMisconfigured; other 4xx → RemoteRejected.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote, urlsplit
from uuid import UUID

import httpx

from accord.adapters.idp.http import NOT_SENT, json_object, retry_after_seconds
from accord.config import Auth0Settings
from accord.domain.errors import (
    OutcomeUnknown,
    ProviderMisconfigured,
    ProviderUnavailable,
    RemoteConflict,
    RemoteNotFound,
    RemoteRejected,
)
from accord.domain.ports import NewRemoteUser, RemoteUser

DEFAULT_CONNECTION = "Username-Password-Authentication"
TOKEN_REFRESH_MARGIN = 10.0  # as the v6 SDK does (docs/idp/auth0.md#management-api-token)
EXPORT_FIELDS = [{"name": name} for name in ("user_id", "email", "name", "identities", "blocked")]
SCOPES_NEEDED = "read:users create:users update:users delete:users"
_WRITES = frozenset({"POST", "PATCH", "DELETE"})
_EMAIL_TAKEN = "The specified new email already exists"  # PATCH's 400 for a taken e-mail
_STATUS_ERRORS: dict[int, type[Exception]] = {
    404: RemoteNotFound,
    409: RemoteConflict,
    401: ProviderMisconfigured,
    403: ProviderMisconfigured,
}


class Auth0Provider:
    """The ``auth0`` IdP: the users of one database connection of one Auth0 tenant."""

    name = "auth0"

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        audience: str | None = None,
        connection: str = DEFAULT_CONNECTION,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        export_poll_seconds: float = 1.0,
        export_timeout_seconds: float = 900.0,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._audience = audience or f"https://{urlsplit(self._base_url).netloc}/api/v2/"
        self._connection = connection
        self._owns_http = client is None
        self._http = client or httpx.AsyncClient(timeout=timeout, transport=transport)
        self._clock = clock
        self._export_poll = export_poll_seconds
        self._export_timeout = export_timeout_seconds
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Auth0Settings, **options: Any) -> Auth0Provider:
        """Build from ``ACCORD_AUTH0__*``; ProviderMisconfigured names what is missing."""
        domain = (settings.domain or "").removeprefix("https://").strip("/")
        secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
        required = {
            "ACCORD_AUTH0__DOMAIN": domain or settings.base_url,
            "ACCORD_AUTH0__CLIENT_ID": settings.client_id,
            "ACCORD_AUTH0__CLIENT_SECRET": secret,
        }
        missing = [name for name, value in required.items() if not value]
        if missing:
            raise ProviderMisconfigured(f"Auth0 is not configured: set {', '.join(missing)}.")
        return cls(
            base_url=settings.base_url or f"https://{domain}",
            audience=f"https://{domain}/api/v2/" if domain else None,
            client_id=settings.client_id or "",
            client_secret=secret,
            connection=settings.connection,
            timeout=settings.timeout_seconds,
            **options,
        )

    # -- the port ------------------------------------------------------------------------------

    async def find_by_email(self, email: str) -> RemoteUser | None:
        # Exact and case-sensitive on the stored value; one user per connection may answer
        # (docs/idp/auth0.md#lookup-by-e-mail).
        found = await self._call("GET", "/api/v2/users-by-email", params={"email": email})
        ours = (u for u in found if u.get("email") == email and self._on_connection(u))
        return next((_remote(u) for u in ours), None)

    async def get(self, remote_id: str) -> RemoteUser:
        return _remote(await self._call("GET", _user_path(remote_id)))

    async def create(self, user: NewRemoteUser) -> RemoteUser:
        body = {
            "connection": self._connection,
            # auth0|<hex>: a retried create gets 409, not a second user (docs/idp/auth0.md#user-ids)
            "user_id": user.user_id.hex,
            "email": user.email,
            "name": user.full_name,
            # Database connections require a password (API reference, POST /users); without one,
            # a random one nobody knows: the person sets theirs through accord's password setup.
            "password": user.password or _unusable_password(),
            "email_verified": False,
            "verify_email": False,  # accord sends its own mail, after commit (G8)
        }
        return _remote(await self._call("POST", "/api/v2/users", json=body))

    async def update(
        self,
        remote_id: str,
        *,
        email: str | None = None,
        full_name: str | None = None,
        password: str | None = None,
    ) -> RemoteUser:
        path = _user_path(remote_id)
        changes: dict[str, Any] = {"name": full_name} if full_name is not None else {}
        if email is not None:  # docs/idp/auth0.md#e-mail-changes-name-the-connection
            changes |= {"email": email, "connection": self._connection, "verify_email": False}
        result = await self._call("PATCH", path, json=changes) if changes else None
        if password is not None:  # docs/idp/auth0.md#password-and-e-mail-in-separate-updates
            body = {"password": password, "connection": self._connection}
            result = await self._call("PATCH", path, json=body)
        return _remote(result if result is not None else await self._call("GET", path))

    async def set_enabled(self, remote_id: str, enabled: bool) -> RemoteUser:
        # ``blocked`` is a root field of PATCH /users/{id}: replaced, idempotent; a blocked user's
        # sign-in is refused by Auth0 itself (docs/idp/auth0.md#blocking-users).
        body = {"blocked": not enabled}
        return _remote(await self._call("PATCH", _user_path(remote_id), json=body))

    async def delete(self, remote_id: str) -> None:
        # 204 even for a missing user: already idempotent (docs/idp/auth0.md#delete-is-idempotent)
        await self._call("DELETE", _user_path(remote_id))

    async def iter_users(self, *, page_size: int = 100) -> AsyncIterator[RemoteUser]:
        location = await self._export_location()
        async for record in self._export_records(location):
            if self._on_connection(record):
                yield _remote(record)

    async def check(self) -> None:
        """A token, then the cheapest consistent read (search lags and may 503)."""
        await self._access_token()
        await self._call("GET", "/api/v2/users-by-email", params={"email": "check@accord.invalid"})

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # -- HTTP ----------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, *, write: bool | None = None, **kw: Any) -> Any:
        """One Management API request; errors mapped to the port's contract."""
        write = method in _WRITES if write is None else write
        token = await self._access_token()
        response = await self._send(method, path, token, write, **kw)
        # A 401 is a bad or expired token: the request did not run, so resend it once.
        if response.status_code == 401:  # docs/idp/auth0.md#management-api-token
            token = await self._access_token(stale=token)
            response = await self._send(method, path, token, write, **kw)
        _raise_for_status(response, write)
        return response.json() if response.content else None

    async def _send(
        self, method: str, path: str, token: str, write: bool, **kw: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return await self._request(method, self._base_url + path, write, headers=headers, **kw)

    async def _request(self, method: str, url: str, write: bool, **kw: Any) -> httpx.Response:
        what = f"Auth0 ({method} {urlsplit(url).path})"
        try:
            return await self._http.request(method, url, **kw)
        except NOT_SENT as exc:  # nothing reached Auth0
            raise ProviderUnavailable(f"{what} is unreachable: {type(exc).__name__}.") from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ProviderMisconfigured(
                f"{what}: {self._base_url!r} is not an http(s) URL."
            ) from exc
        except httpx.TransportError as exc:
            if write:
                message = f"{what} sent no answer ({type(exc).__name__}); it may have been applied."
                raise OutcomeUnknown(message) from exc
            raise ProviderUnavailable(f"{what} sent no answer: {type(exc).__name__}.") from exc

    async def _access_token(self, stale: str | None = None) -> str:
        async with self._token_lock:
            token = self._token
            if token is None or token == stale or self._clock() >= self._token_expires:
                token = self._token = await self._fetch_token()
            return token

    async def _fetch_token(self) -> str:
        body = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            # https://{domain}/api/v2/ with its slash (docs/idp/auth0.md#management-api-token)
            "audience": self._audience,
        }
        response = await self._request("POST", f"{self._base_url}/oauth/token", False, json=body)
        if response.status_code in (400, 401, 403):
            raise ProviderMisconfigured(self._token_refusal(response))
        _raise_for_status(response, write=False)
        payload = response.json()
        self._token_expires = self._clock() + float(payload["expires_in"]) - TOKEN_REFRESH_MARGIN
        return payload["access_token"]

    def _token_refusal(self, response: httpx.Response) -> str:
        body = json_object(response)
        error, description = body.get("error", "?"), body.get("error_description", "")
        # OAuth-shaped refusals (docs/idp/auth0.md#management-api-token)
        if description == "Unauthorized":  # wrong client id or secret
            hint = "check ACCORD_AUTH0__CLIENT_ID and ACCORD_AUTH0__CLIENT_SECRET"
        elif error == "unauthorized_client":  # the grant is not enabled for the application
            hint = "enable the Client Credentials grant for this application in Auth0"
        else:
            hint = (
                f"authorize this application for the Management API {self._audience} "
                "(or fix ACCORD_AUTH0__DOMAIN)"
            )
        message = (
            f"Auth0 refused a Management API token to client {self._client_id!r} at "
            f"{self._base_url}/oauth/token (HTTP {response.status_code} {error}: "
            f"{description}); {hint}."
        )
        return message.replace(self._client_secret, "***")  # never echo the secret

    # -- export (see the module docstring) ------------------------------------------------------

    async def _export_location(self) -> str:
        body = {"format": "json", "fields": EXPORT_FIELDS}
        job = await self._call("POST", "/api/v2/jobs/users-exports", write=False, json=body)
        path = f"/api/v2/jobs/{quote(job['id'], safe='')}"
        deadline, delay = self._clock() + self._export_timeout, self._export_poll
        while True:
            job = await self._call("GET", path)
            if job.get("status") == "completed":
                return job["location"]
            if job.get("status") == "failed" or self._clock() >= deadline:
                details = job.get("status_details") or f"status {job.get('status')!r}"
                raise ProviderUnavailable(f"Auth0 export job {job['id']} did not finish: {details}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _export_records(self, location: str) -> AsyncIterator[dict[str, Any]]:
        try:
            async with self._http.stream("GET", location) as response:  # no bearer token
                if response.status_code >= 400:
                    message = f"Auth0 export download answered {response.status_code}."
                    raise ProviderUnavailable(message)
                async for line in _gunzip_lines(response.aiter_raw()):
                    yield json.loads(line)
        except (httpx.TransportError, zlib.error, ValueError) as exc:
            raise ProviderUnavailable(f"Auth0 export download failed: {exc!r}") from exc

    def _on_connection(self, user: dict[str, Any]) -> bool:
        # users-by-email spans connections: keep ours (docs/idp/auth0.md#lookup-by-e-mail)
        return any(i.get("connection") == self._connection for i in user.get("identities") or [])


async def _gunzip_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The lines of a gzipped NDJSON stream, decompressed as the chunks arrive.

    zlib does not complain when a stream simply stops: a file cut short (at a line end, even)
    inflates to its first lines without an error. So the stream must reach the gzip trailer,
    whose CRC-32 and length zlib checks; otherwise the listing raises (a partial listing would
    look like deleted users to reconcile). A file of several gzip members (RFC 1952 §2.2) is read
    member by member.
    """
    inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
    pending = b""
    async for chunk in chunks:
        data = chunk
        while data:
            pending += inflate.decompress(data)
            data = inflate.unused_data if inflate.eof else b""
            if data:  # the next member starts in this chunk
                inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    pending += inflate.flush()
    if not inflate.eof:  # also an empty download: even an export of no users has a trailer
        raise ValueError("the export file ends before its gzip trailer: it is truncated")
    if pending.strip():
        yield pending


def _raise_for_status(response: httpx.Response, write: bool) -> None:
    status = response.status_code
    if status < 400:
        return
    body = json_object(response)
    code = body.get("errorCode") or body.get("error") or ""
    detail = f"Auth0 answered {status} {code}: {body.get('message', '')}".rstrip(": ")
    if status == 429:  # docs/idp/auth0.md#rate-limits
        raise ProviderUnavailable(detail, retry_after=_retry_after(response.headers))
    if status == 504 and write:  # the gateway gave up waiting; the backend may still finish
        raise OutcomeUnknown(f"{detail}; it may have been applied.")
    if status >= 500 or status == 408:
        raise ProviderUnavailable(detail)
    if str(body.get("message", "")).startswith(_EMAIL_TAKEN):
        raise RemoteConflict(detail)  # 400, not 409 (docs/idp/auth0.md#a-taken-e-mail-on-update)
    if status in (401, 403):
        detail += f"; the application needs the Management API scopes {SCOPES_NEEDED}"
    raise _STATUS_ERRORS.get(status, RemoteRejected)(detail)


def _retry_after(headers: httpx.Headers) -> float | None:
    """Retry-After first, as the SDK does, then x-ratelimit-reset (epoch seconds)."""
    if (seconds := retry_after_seconds(headers.get("retry-after"))) is not None:
        return seconds
    try:
        reset = float(headers.get("x-ratelimit-reset", ""))
    except ValueError:
        return None
    return max(0.0, reset - time.time())


def _user_path(remote_id: str) -> str:
    return f"/api/v2/users/{quote(remote_id, safe='')}"  # auth0%7Cx (docs/idp/auth0.md#user-ids)


def _remote(user: dict[str, Any]) -> RemoteUser:
    return RemoteUser(
        remote_id=user["user_id"],
        email=user.get("email", ""),
        full_name=user.get("name"),
        accord_user_id=_accord_user_id(user["user_id"]),
        # Absent until a user was ever blocked (docs/idp/auth0.md#blocking-users).
        enabled=not user.get("blocked", False),
    )


def _accord_user_id(remote_id: str) -> str | None:
    """accord's user id, when accord chose this remote id (``auth0|<uuid hex>``)."""
    strategy, _, local = remote_id.partition("|")
    if strategy != "auth0" or len(local) != 32:
        return None
    try:
        return str(UUID(hex=local))
    except ValueError:
        return None


def _unusable_password() -> str:
    # High-entropy and covering every character class, so any password policy accepts it.
    return secrets.token_urlsafe(32) + "aA1!"

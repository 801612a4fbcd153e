"""Keycloak: accord's users in one realm, through the Admin REST API, spoken with httpx.

The Keycloak facts this module relies on are in ``docs/idp/keycloak.md``. Keycloak chooses user
ids itself (docs/idp/keycloak.md#user-ids), so accord's user id travels in a user attribute; a
create whose answer was lost is then recognised by the exact e-mail lookup. No request that
writes is ever sent twice, except once after a 401 (the server did nothing) with a fresh token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from accord.adapters.idp.http import retry_after_seconds
from accord.config import KeycloakSettings
from accord.domain.errors import (
    ConfigurationError,
    OutcomeUnknown,
    ProviderError,
    ProviderMisconfigured,
    ProviderUnavailable,
    RemoteConflict,
    RemoteNotFound,
    RemoteRejected,
)
from accord.domain.ports import NewRemoteUser, RemoteUser

logger = logging.getLogger(__name__)

ACCORD_ATTRIBUTE = "accord_user_id"
TOKEN_LIFETIME_FRACTION = 0.9  # refresh a little before expiry (docs/idp/keycloak.md#admin-token)
# Unmanaged-attribute policies that let admins write (docs/idp/keycloak.md#unmanaged-attributes).
KEPT_POLICIES = {"ENABLED", "ADMIN_EDIT"}
ROLES_HINT = (
    "give the client's service account the realm-management roles "
    "manage-users, view-users and query-users"
)


def attribute_help(realm: str, attribute: str) -> str:
    """Why accord needs its user attribute, and how to make the realm keep it."""
    return (
        f"Keycloak realm '{realm}' drops the user attribute '{attribute}', which accord needs to "
        "recognise the users it created. Since Keycloak 24, unmanaged attributes are disabled by "
        "default. Enable them in the admin console (Realm settings > General > Unmanaged "
        "attributes: Enabled or Admin can edit), or PUT /admin/realms/"
        f'{realm}/users/profile with "unmanagedAttributePolicy": "ENABLED" (keep its '
        f"'attributes' section), or declare '{attribute}' in the realm's user profile."
    )


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float  # on the provider's clock


class KeycloakProvider:
    """The ``keycloak`` IdP: one realm, a confidential client with a service account."""

    name = "keycloak"

    def __init__(
        self,
        server_url: str,
        realm: str,
        client_id: str,
        client_secret: SecretStr | str,
        *,
        timeout_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
        attribute: str = ACCORD_ATTRIBUTE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A path prefix such as /auth is kept (docs/idp/keycloak.md#server-path-prefix).
        server = server_url.rstrip("/")
        self.realm = realm
        self.client_id = client_id
        self._secret = SecretStr(client_secret) if isinstance(client_secret, str) else client_secret
        self._token_url = f"{server}/realms/{quote(realm, safe='')}/protocol/openid-connect/token"
        self._admin_url = f"{server}/admin/realms/{quote(realm, safe='')}"
        self._owns_client = client is None
        self._http = client or httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(timeout_seconds)
        )
        self._attribute = attribute
        self._clock = clock
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        self._attribute_kept = False  # proven by reading back the first user this process creates

    @classmethod
    def from_settings(cls, settings: KeycloakSettings) -> KeycloakProvider:
        """Build from ``ACCORD_KEYCLOAK__*`` settings; ConfigurationError names what is missing."""
        required = ("server_url", "realm", "client_id", "client_secret")
        missing = [f"ACCORD_KEYCLOAK__{n.upper()}" for n in required if not getattr(settings, n)]
        if missing:
            raise ConfigurationError(f"Keycloak needs {', '.join(missing)}.")
        return cls(
            settings.server_url,  # type: ignore[arg-type]
            settings.realm,  # type: ignore[arg-type]
            settings.client_id,  # type: ignore[arg-type]
            settings.client_secret,  # type: ignore[arg-type]
            timeout_seconds=settings.timeout_seconds,
        )

    # -- the port ------------------------------------------------------------------------------

    async def find_by_email(self, email: str) -> RemoteUser | None:
        # Without exact=true the e-mail filter is a substring match (docs/idp/keycloak.md#search);
        # Keycloak stores e-mails lower-cased, so compare again, case-insensitively, here.
        params = {"email": email, "exact": "true", "briefRepresentation": "false"}
        reps = (await self._request("GET", "/users", params=params)).json()
        matches = [r for r in reps if (r.get("email") or "").lower() == email.lower()]
        matches.sort(key=lambda r: _accord_id(r, self._attribute) is None)  # ours first
        return self._remote(matches[0]) if matches else None

    async def get(self, remote_id: str) -> RemoteUser:
        return self._remote(await self._read(remote_id))

    async def create(self, user: NewRemoteUser) -> RemoteUser:
        response = await self._request("POST", "/users", write=True, json=self._new_rep(user))
        remote_id = _id_from_location(response)
        await self._finish_create(remote_id, user)
        return RemoteUser(remote_id, user.email.lower(), user.full_name, str(user.user_id))

    async def update(
        self,
        remote_id: str,
        *,
        email: str | None = None,
        full_name: str | None = None,
        password: str | None = None,
    ) -> RemoteUser:
        rep = await self._read(remote_id)
        if password is not None:  # first: a refused password leaves the user untouched
            await self._set_password(remote_id, password)
        if _apply(rep, email=email, full_name=full_name):
            # PUT replaces the whole user since KC 24.0.4: send back all we read
            # (docs/idp/keycloak.md#full-replace-on-update).
            await self._request("PUT", _user_path(remote_id), write=True, json=rep)
        return self._remote(rep)

    async def delete(self, remote_id: str) -> None:
        try:
            await self._request("DELETE", _user_path(remote_id), write=True)
        except RemoteNotFound:
            return  # unknown → 404 (docs/idp/keycloak.md#delete); the port's delete is idempotent

    async def iter_users(self, *, page_size: int = 100) -> AsyncIterator[RemoteUser]:
        first = 0
        while True:  # first/max offsets; the answer is a bare array (docs/idp/keycloak.md#search)
            params = {"first": first, "max": page_size, "briefRepresentation": "false"}
            page = (await self._request("GET", "/users", params=params)).json()
            for rep in page:
                yield self._remote(rep)
            if len(page) < page_size:
                return
            first += page_size

    async def check(self) -> None:
        await self._request("GET", "/users/count")  # a token and a cheap read
        await self._check_attribute_policy()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()

    # -- users ---------------------------------------------------------------------------------

    def _new_rep(self, user: NewRemoteUser) -> dict[str, Any]:
        # Keycloak lower-cases both username and e-mail (docs/idp/keycloak.md#user-representation).
        email = user.email.lower()
        rep: dict[str, Any] = {"username": email, "email": email, "enabled": True}
        rep.update(_name_fields(user.full_name))
        # Keycloak ignores a caller-chosen id (docs/idp/keycloak.md#user-ids): use an attribute.
        rep["attributes"] = {self._attribute: [str(user.user_id)]}
        return rep

    async def _finish_create(self, remote_id: str, user: NewRemoteUser) -> None:
        try:
            await self._ensure_attribute_kept(remote_id)
            if user.password is not None:
                await self._set_password(remote_id, user.password)
        except ProviderError as exc:
            # Keycloak takes the password only once the user exists: if it is refused (or the
            # realm dropped our attribute), delete the user again so a failed create leaves no
            # user behind (G7).
            if not await self._delete_quietly(remote_id):
                if isinstance(exc, ProviderUnavailable):
                    raise OutcomeUnknown(
                        f"Keycloak created user {remote_id}, then failed: {exc.message}"
                    ) from exc
                raise
            if isinstance(exc, OutcomeUnknown):  # nothing is left: a plain transient failure
                raise ProviderUnavailable(exc.message, retry_after=exc.retry_after) from exc
            raise

    async def _ensure_attribute_kept(self, remote_id: str) -> None:
        if self._attribute_kept:
            return
        if _accord_id(await self._read(remote_id), self._attribute) is None:
            message = attribute_help(self.realm, self._attribute)
            logger.error(message)
            raise ProviderMisconfigured(message)
        self._attribute_kept = True

    async def _check_attribute_policy(self) -> None:
        try:
            profile = (await self._request("GET", "/users/profile")).json()
        except (RemoteNotFound, ProviderMisconfigured):
            return  # no user profile (KC < 24) or no right to read it: creates check instead
        declared = {a.get("name") for a in profile.get("attributes", [])}
        policy = profile.get("unmanagedAttributePolicy")
        if policy not in KEPT_POLICIES and self._attribute not in declared:
            raise ProviderMisconfigured(attribute_help(self.realm, self._attribute))

    async def _set_password(self, remote_id: str, password: str) -> None:
        body = {"type": "password", "value": password, "temporary": False}
        await self._request("PUT", f"{_user_path(remote_id)}/reset-password", write=True, json=body)

    async def _delete_quietly(self, remote_id: str) -> bool:
        try:
            await self.delete(remote_id)
        except ProviderError as exc:
            logger.warning("could not delete Keycloak user %s again: %s", remote_id, exc)
            return False
        return True

    async def _read(self, remote_id: str) -> dict[str, Any]:
        return (await self._request("GET", _user_path(remote_id))).json()

    def _remote(self, rep: dict[str, Any]) -> RemoteUser:
        return RemoteUser(
            remote_id=rep["id"],
            email=rep.get("email") or "",
            full_name=_full_name(rep),
            accord_user_id=_accord_id(rep, self._attribute),
        )

    # -- HTTP ----------------------------------------------------------------------------------

    async def _request(
        self, method: str, path: str, *, write: bool = False, **kwargs: Any
    ) -> httpx.Response:
        response = await self._send(method, path, write, **kwargs)
        if response.status_code == 401:
            # A 401 means nothing was done (token revoked or expired early): one fresh token, one
            # resend, as python-keycloak does (docs/idp/keycloak.md#admin-token).
            self._token = None
            response = await self._send(method, path, write, **kwargs)
        if response.is_success:
            return response
        raise self._error(response, write=write)

    async def _send(self, method: str, path: str, write: bool, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {await self._access_token()}"}
        try:
            return await self._http.request(
                method, self._admin_url + path, headers=headers, **kwargs
            )
        except httpx.HTTPError as exc:
            raise _transport_error(exc, write=write) from exc

    async def _access_token(self) -> str:
        async with self._token_lock:
            if self._token is None or self._clock() >= self._token.refresh_at:
                self._token = await self._fetch_token()
            return self._token.value

    async def _fetch_token(self) -> _Token:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._secret.get_secret_value(),
        }
        try:
            response = await self._http.post(self._token_url, data=form)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, write=False) from exc
        if not response.is_success:
            raise self._token_error(response)
        try:
            body = response.json()
            lifetime = float(body.get("expires_in", 60))  # docs/idp/keycloak.md#admin-token
            return _Token(body["access_token"], self._clock() + lifetime * TOKEN_LIFETIME_FRACTION)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ProviderMisconfigured(
                f"{self._token_url} did not answer with a token: is the server URL Keycloak's?"
            ) from None

    def _token_error(self, response: httpx.Response) -> ProviderError:
        error, detail = _oauth_error(response)
        if response.status_code == 404:
            return ProviderMisconfigured(
                f"Keycloak has no realm '{self.realm}' at {self._token_url} (404): check "
                "ACCORD_KEYCLOAK__REALM and ACCORD_KEYCLOAK__SERVER_URL (before Keycloak 17 it "
                "ends in /auth)."
            )
        if error in {"invalid_client", "unauthorized_client", "unsupported_grant_type"}:
            # Unknown client → invalid_client; wrong secret → unauthorized_client
            # (docs/idp/keycloak.md#admin-token).
            return ProviderMisconfigured(
                f"Keycloak refused client '{self.client_id}' in realm '{self.realm}' ({error}: "
                f"{detail}): check ACCORD_KEYCLOAK__CLIENT_ID and ACCORD_KEYCLOAK__CLIENT_SECRET, "
                "and that the client is confidential with service accounts enabled."
            )
        if response.status_code == 429 or response.status_code >= 500:
            return self._error(response, write=False)
        return ProviderMisconfigured(
            f"Keycloak's token endpoint answered {response.status_code} ({error}: {detail})."
        )

    def _error(self, response: httpx.Response, *, write: bool) -> ProviderError:
        status = response.status_code
        message = f"Keycloak answered {status}: {_message(response)}"
        if status == 429 or status == 503:  # refused before any work; 429 comes from proxies only
            return ProviderUnavailable(message, retry_after=_retry_after(response))
        if status >= 500:
            return OutcomeUnknown(message) if write else ProviderUnavailable(message)
        if status == 401:
            return ProviderMisconfigured(
                f"Keycloak rejected a fresh admin token of client '{self.client_id}' (401): the "
                f"client must belong to realm '{self.realm}'."
            )
        if status == 403:
            return ProviderMisconfigured(
                f"Keycloak forbade client '{self.client_id}' this request (403): {ROLES_HINT}."
            )
        if status == 404:
            if "realm not found" in message.lower():
                return ProviderMisconfigured(f"Keycloak has no realm '{self.realm}' ({message}).")
            return RemoteNotFound(message)
        if status == 409:  # "User exists with same …" (docs/idp/keycloak.md#error-bodies)
            return RemoteConflict(message)
        return RemoteRejected(message)  # 400: password policy, user-profile validation


# -- wire helpers ------------------------------------------------------------------------------


def _user_path(remote_id: str) -> str:
    return f"/users/{quote(remote_id, safe='')}"


def _id_from_location(response: httpx.Response) -> str:
    # 201 with an empty body; the id is the last segment of Location (docs/idp/keycloak.md#create).
    location = response.headers.get("Location", "")
    head, _, remote_id = location.rstrip("/").rpartition("/")
    if not head.endswith("/users") or not remote_id:
        raise OutcomeUnknown(f"Keycloak created a user but sent no usable Location ({location!r}).")
    return remote_id


def _name_fields(full_name: str | None) -> dict[str, str]:
    first, _, last = (full_name or "").strip().partition(" ")
    return {"firstName": first, "lastName": last.strip()}


def _full_name(rep: dict[str, Any]) -> str | None:
    return " ".join(p for p in (rep.get("firstName"), rep.get("lastName")) if p) or None


def _accord_id(rep: dict[str, Any], attribute: str) -> str | None:
    values = (rep.get("attributes") or {}).get(attribute) or []  # values are lists
    return values[0] if values else None


def _apply(rep: dict[str, Any], *, email: str | None, full_name: str | None) -> bool:
    """Apply the changes to a full representation; whether anything changed."""
    before = dict(rep)
    if email is not None:
        if rep.get("username") == rep.get("email"):  # the username accord chose follows along
            rep["username"] = email.lower()
        rep["email"] = email.lower()
    if full_name is not None:
        rep.update(_name_fields(full_name))
    return rep != before


def _message(response: httpx.Response) -> str:
    """The readable part of any of Keycloak's error bodies (docs/idp/keycloak.md#error-bodies)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(_one_message(e) for e in body["errors"] if isinstance(e, dict))
    return _one_message(body) if isinstance(body, dict) else str(body)[:200]


def _one_message(body: dict[str, Any]) -> str:
    text = body.get("errorMessage") or body.get("error_description") or body.get("error") or ""
    if body.get("error_description") and body.get("error"):
        text = f"{body['error_description']} ({body['error']})"
    return f"{body['field']}: {text}" if body.get("field") else str(text)


def _oauth_error(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
        return str(body.get("error", "")), str(body.get("error_description", ""))
    except (ValueError, AttributeError):
        return "", response.text[:200]


def _retry_after(response: httpx.Response) -> float | None:
    return retry_after_seconds(response.headers.get("Retry-After"))


def _transport_error(exc: httpx.HTTPError, *, write: bool) -> ProviderError:
    if isinstance(exc, httpx.UnsupportedProtocol):
        return ProviderMisconfigured(f"The Keycloak server URL is not usable: {exc}")
    # Connecting failed: the request never left. Anything later: a write may have been applied.
    sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    message = f"Keycloak did not answer ({type(exc).__name__})."
    return OutcomeUnknown(message) if write and sent else ProviderUnavailable(message)

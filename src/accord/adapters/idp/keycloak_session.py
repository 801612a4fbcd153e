"""Keycloak's Admin REST API for one realm, as a service account: its token and its errors.

``KeycloakSession`` fetches and caches the client-credentials token, sends admin requests with it,
and turns every failure (transport, token endpoint, admin status) into the port's error types;
``KeycloakProvider`` (``keycloak.py``) builds the user calls on top. Vendor facts are in
``docs/idp/keycloak.md``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from accord.adapters.idp.http import retry_after_seconds, was_sent
from accord.domain.errors import (
    OutcomeUnknown,
    ProviderError,
    ProviderMisconfigured,
    ProviderUnavailable,
    RemoteConflict,
    RemoteNotFound,
    RemoteRejected,
)

TOKEN_LIFETIME_FRACTION = 0.9  # refresh a little before expiry (docs/idp/keycloak.md#admin-token)
ROLES_HINT = (
    "give the client's service account the realm-management roles "
    "manage-users, view-users and query-users"
)


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float  # on the session's clock


class KeycloakSession:
    """Admin requests to one realm with a confidential client's token; errors are port errors."""

    def __init__(
        self,
        server_url: str,
        realm: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        timeout_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A path prefix such as /auth is kept (docs/idp/keycloak.md#server-path-prefix).
        server = server_url.rstrip("/")
        self.realm = realm
        self.client_id = client_id
        self._secret = client_secret
        self._token_url = f"{server}/realms/{quote(realm, safe='')}/protocol/openid-connect/token"
        self._admin_url = f"{server}/admin/realms/{quote(realm, safe='')}"
        self._owns_client = client is None
        self._http = client or httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(timeout_seconds)
        )
        self._clock = clock
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()

    async def request(
        self, method: str, path: str, *, write: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """One admin request (``path`` below the realm); a failure raises a ProviderError."""
        response = await self._send(method, path, write, **kwargs)
        if response.status_code == 401:
            # A 401 means nothing was done (token revoked or expired early): one fresh token, one
            # resend, as python-keycloak does (docs/idp/keycloak.md#admin-token).
            self._token = None
            response = await self._send(method, path, write, **kwargs)
        if response.is_success:
            return response
        raise self._error(response, write=write)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()

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
    message = f"Keycloak did not answer ({type(exc).__name__})."
    return OutcomeUnknown(message) if write and was_sent(exc) else ProviderUnavailable(message)

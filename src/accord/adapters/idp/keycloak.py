"""Keycloak: accord's users in one realm, through the Admin REST API, spoken with httpx.

The Keycloak facts this module relies on are in ``docs/idp/keycloak.md``. Keycloak chooses user
ids itself (docs/idp/keycloak.md#user-ids), so accord's user id travels in a user attribute; a
create whose answer was lost is then recognised by the exact e-mail lookup. No request that
writes is ever sent twice, except once after a 401 (the server did nothing) with a fresh token.
The token, the requests and the mapping of Keycloak's errors are ``keycloak_session.py``'s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from accord.adapters.idp.keycloak_session import KeycloakSession
from accord.config import KeycloakSettings
from accord.domain.errors import (
    ConfigurationError,
    OutcomeUnknown,
    ProviderError,
    ProviderMisconfigured,
    ProviderUnavailable,
    RemoteNotFound,
)
from accord.domain.ports import NewRemoteUser, RemoteUser

logger = logging.getLogger(__name__)

ACCORD_ATTRIBUTE = "accord_user_id"
# Unmanaged-attribute policies that let admins write (docs/idp/keycloak.md#unmanaged-attributes).
KEPT_POLICIES = {"ENABLED", "ADMIN_EDIT"}


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
        self.realm = realm
        self.client_id = client_id
        secret = SecretStr(client_secret) if isinstance(client_secret, str) else client_secret
        self._api = KeycloakSession(
            server_url,
            realm,
            client_id,
            secret,
            timeout_seconds=timeout_seconds,
            transport=transport,
            client=client,
            clock=clock,
        )
        self._attribute = attribute
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

    async def set_enabled(self, remote_id: str, enabled: bool) -> RemoteUser:
        rep = await self._read(remote_id)
        if rep.get("enabled", True) != enabled:
            # ``enabled: false`` refuses sign-in (docs/idp/keycloak.md#disabling-users); PUT
            # replaces the whole user, so the representation read goes back whole.
            rep["enabled"] = enabled
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
        await self._api.aclose()

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
            enabled=bool(rep.get("enabled", True)),
        )

    async def _request(
        self, method: str, path: str, *, write: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """One admin request below the realm; see ``KeycloakSession.request``."""
        return await self._api.request(method, path, write=write, **kwargs)


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

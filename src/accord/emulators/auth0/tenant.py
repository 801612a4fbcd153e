"""The emulated tenant's state: its database connection's users and the tokens it issued.

Users are stored as the API returns them; creates and updates validate as Auth0 does
(docs/idp/auth0.md#create-and-update). Export jobs and their files are kept here too; ``export``
runs them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from accord.emulators.auth0.query import matches, parse_query
from accord.emulators.auth0.wire import (
    api_error,
    check_email,
    now,
    oauth_error,
    only,
    query_error,
    required,
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


DEFAULT_CLIENT_ID = "accord-emulator-client"
DEFAULT_CLIENT_SECRET = "accord-emulator-secret"
DEFAULT_CONNECTION = "Username-Password-Authentication"
DEFAULT_SCOPES = frozenset({"read:users", "create:users", "update:users", "delete:users"})
TOKEN_TTL_SECONDS = 86400  # docs/idp/auth0.md#management-api-token
MIN_PASSWORD_LENGTH = 8  # the emulated connection's password policy
_PROFILE_EXTRAS = _words(
    "given_name family_name username blocked phone_number phone_verified user_metadata app_metadata"
)
_NOT_STORED = _words("password connection client_id verify_email verify_phone_number")
# What POST and PATCH /api/v2/users accept; anything else is "Additional properties"
# (docs/idp/auth0.md#create-and-update).
CREATE_FIELDS = _PROFILE_EXTRAS | _words(
    "connection email password email_verified verify_email name nickname picture user_id"
)
UPDATE_FIELDS = _PROFILE_EXTRAS | _NOT_STORED | _words("email email_verified name nickname picture")


@dataclass
class StoredUser:
    profile: dict[str, Any]  # the user JSON, as the API returns it
    password: str | None = field(default=None, repr=False)
    indexed_at: float = field(default_factory=time.monotonic)  # when search saw it


@dataclass
class Auth0Tenant:
    """One tenant's state: the database connection's users, issued tokens, export jobs."""

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = field(default=DEFAULT_CLIENT_SECRET, repr=False)
    connection: str = DEFAULT_CONNECTION
    connection_id: str = "con_accordEmulator01"
    scopes: frozenset[str] = DEFAULT_SCOPES  # granted to tokens issued from now on
    token_ttl_seconds: int = TOKEN_TTL_SECONDS
    export_polls: int = 0  # job polls answered "processing" before "completed"
    # Faults of the export, for tests: the job ends "failed"; the file is served altered (cut
    # short, corrupted) by this function.
    export_fails: bool = False
    export_damage: Callable[[bytes], bytes] | None = field(default=None, repr=False)
    users: dict[str, StoredUser] = field(default_factory=dict)
    tokens: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict, repr=False)
    tokens_issued: int = 0
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    export_files: dict[str, bytes] = field(default_factory=dict, repr=False)

    # -- tokens (docs/idp/auth0.md#management-api-token) -----------------------------------------

    def issue_token(self, form: dict[str, str], host: str) -> dict[str, Any]:
        if not form.get("grant_type"):
            raise oauth_error(400, "invalid_request", "Missing required parameter: grant_type")
        secret = form.get("client_secret") or ""
        if form.get("client_id") != self.client_id or not hmac.compare_digest(
            secret.encode(), self.client_secret.encode()
        ):
            raise oauth_error(401, "access_denied", "Unauthorized")
        if form["grant_type"] != "client_credentials":
            message = f"Grant type '{form['grant_type']}' not allowed for the client."
            raise oauth_error(403, "unauthorized_client", message)
        self._check_audience(form.get("audience"), host)
        token = secrets.token_urlsafe(32)
        self.tokens[token] = (time.time() + self.token_ttl_seconds, self.scopes)
        self.tokens_issued += 1
        return {
            "access_token": token,
            "scope": " ".join(sorted(self.scopes)),
            "expires_in": self.token_ttl_seconds,
            "token_type": "Bearer",
        }

    @staticmethod
    def _check_audience(audience: str | None, host: str) -> None:
        if not audience:
            message = "No audience parameter was provided, and no default audience has been set"
            raise oauth_error(403, "access_denied", message)
        if audience != f"https://{host}/api/v2/":  # with the trailing slash
            message = f"Service not enabled within domain: {audience}"
            raise oauth_error(403, "access_denied", message)

    def authorize(self, header: str | None, scope: str) -> None:
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise api_error(401, "Missing authentication")
        expires, scopes = self.tokens.get(token, (0.0, frozenset()))
        if expires == 0.0:
            raise api_error(401, "Invalid token", attributes={"error": "Invalid token"})
        if time.time() >= expires:
            message = "Expired token received for JSON Web Token validation"
            raise api_error(401, message, attributes={"error": message})
        if scope not in scopes:
            message = f"Insufficient scope, expected any of: {scope}"
            raise api_error(403, message, "insufficient_scope")

    # -- users (docs/idp/auth0.md#create-and-update) ---------------------------------------------

    def create_user(self, body: dict[str, Any]) -> dict[str, Any]:
        only(body, CREATE_FIELDS)
        if required(body, "connection") != self.connection:
            raise api_error(400, "The connection does not exist.", "inexistent_connection")
        # Database connections store e-mails lower-cased (docs/idp/auth0.md#stored-e-mail-case).
        email = check_email(required(body, "email")).lower()
        password = required(body, "password")  # mandatory for database connections (API ref.)
        self._check_password(password)
        # auth0|<24 hex>, or the caller's user_id after the strategy (docs/idp/auth0.md#user-ids)
        user_id = f"auth0|{body.get('user_id') or secrets.token_hex(12)}"
        if user_id in self.users or self._email_owner(email, self.connection):
            # A differently-cased e-mail is the same user (docs/idp/auth0.md#stored-e-mail-case)
            raise api_error(409, "The user already exists.", "auth0_idp_error")
        return self._store(user_id, email, self.connection, body, password)

    def seed_user(self, email: str, *, connection: str | None = None, **body: Any) -> dict:
        """Add a user directly (tests, demos). Other connections keep the e-mail's case."""
        connection = connection or self.connection
        if connection == self.connection:
            user_id = f"auth0|{body.pop('user_id', None) or secrets.token_hex(12)}"
            return self._store(user_id, email.lower(), connection, body, None)
        return self._store(f"{connection}|{secrets.token_hex(10)}", email, connection, body, None)

    def _store(self, user_id: str, email: str, connection: str, body: dict, password: Any) -> dict:
        strategy, _, local_id = user_id.partition("|")
        digest = hashlib.md5(email.encode(), usedforsecurity=False).hexdigest()
        identity = {"connection": connection, "user_id": local_id, "provider": strategy}
        profile = {
            "user_id": user_id,
            "email": email,
            "email_verified": bool(body.get("email_verified")),
            "name": body.get("name") or email,
            "nickname": body.get("nickname") or email.split("@")[0],
            "picture": body.get("picture") or f"https://s.gravatar.com/avatar/{digest}?s=480&r=pg",
            "created_at": now(),
            "updated_at": now(),
            "identities": [{**identity, "isSocial": connection != self.connection}],
        }
        profile.update({k: body[k] for k in _PROFILE_EXTRAS if body.get(k) is not None})
        self.users[user_id] = StoredUser(profile, password)
        return profile

    def _check_password(self, password: Any) -> None:
        if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
            raise api_error(400, "PasswordStrengthError: Password is too weak")  # no errorCode

    def _email_owner(self, email: str, connection: str) -> str | None:
        for user_id, stored in self.users.items():
            same_connection = stored.profile["identities"][0]["connection"] == connection
            if same_connection and stored.profile.get("email", "").lower() == email.lower():
                return user_id
        return None

    def get(self, user_id: str) -> StoredUser:
        try:
            return self.users[user_id]
        except KeyError:
            raise api_error(404, "The user does not exist.", "inexistent_user") from None

    def update_user(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        only(body, UPDATE_FIELDS)
        stored = self.get(user_id)
        if "password" in body and {"email", "email_verified", "username"} & set(body):
            # docs/idp/auth0.md#password-and-e-mail-in-separate-updates
            raise api_error(400, "Cannot update password and email simultaneously")
        if "password" in body:
            self._check_password(body["password"])
            stored.password = body["password"]
        profile = stored.profile
        if "email" in body:
            body = {
                "email_verified": False,
                **body,
                "email": self._new_email(stored, body["email"]),
            }
        for key, value in body.items():
            if key in _NOT_STORED:
                continue
            # docs/idp/auth0.md#metadata-merges-one-level-deep
            if key in ("user_metadata", "app_metadata") and value is not None:
                merged = {**profile.get(key, {}), **value}
                profile[key] = {k: v for k, v in merged.items() if v is not None}
            elif value is None:
                profile.pop(key, None)  # null unsets
            else:
                profile[key] = value
        profile["updated_at"] = now()
        return profile

    def _new_email(self, stored: StoredUser, email: Any) -> str:
        connection = stored.profile["identities"][0]["connection"]
        email = check_email(email).lower() if connection == self.connection else email
        owner = self._email_owner(email, connection)
        if owner not in (None, stored.profile["user_id"]):
            # 400, not 409 (docs/idp/auth0.md#a-taken-e-mail-on-update)
            raise api_error(400, "The specified new email already exists")
        return email

    def by_email(self, email: str) -> list[dict[str, Any]]:
        """Exact, case-sensitive, across connections (docs/idp/auth0.md#lookup-by-e-mail)."""
        return [s.profile for s in self.users.values() if s.profile.get("email") == email]

    def search(self, q: str | None, sort: str | None, visible: Callable[[float], bool]) -> list:
        terms = parse_query(q or "")
        found = [s.profile for s in self.users.values() if visible(s.indexed_at)]  # it lags
        found = [p for p in found if matches(p, terms)]
        if sort:
            key, _, order = sort.partition(":")
            if order not in ("1", "-1"):
                raise query_error(f"'Invalid sort {sort}'")
            found.sort(key=lambda p: str(p.get(key, "")), reverse=order == "-1")
        return found

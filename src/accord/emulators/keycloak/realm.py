"""One emulated realm's state: its users and their credentials, the service account's tokens and
roles, and the user-profile configuration that decides which attributes survive a write."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from accord.emulators.faults import Answer
from accord.emulators.keycloak.search import ROOT_ATTRIBUTES, matches

DEFAULT_REALM = "accord"
DEFAULT_CLIENT_ID = "accord-provisioner"
DEFAULT_CLIENT_SECRET = "accord-emulator-secret"
ALL_ROLES = frozenset({"manage-users", "view-users", "query-users"})
# Policies that let an admin write unmanaged attributes (docs/idp/keycloak.md#unmanaged-attributes).
KEPT_POLICIES = {"ENABLED", "ADMIN_EDIT"}


def _not_found() -> Answer:
    return Answer.json(404, error="User not found")  # docs/idp/keycloak.md#error-bodies


@dataclass
class Realm:
    """One realm's users, credentials, tokens and user-profile configuration."""

    name: str
    client_id: str
    client_secret: str
    unmanaged_policy: str | None = "ENABLED"  # None: disabled, Keycloak's default since 24
    declared: list[dict[str, Any]] = field(default_factory=list)  # extra profile attributes
    password_min_length: int = 8
    token_lifespan: int = 300  # seconds (docs/idp/keycloak.md#admin-token)
    roles: frozenset[str] = ALL_ROLES
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    password_digests: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)  # access token -> monotonic expiry
    tokens_issued: int = 0

    # -- tokens --------------------------------------------------------------------------------

    def issue_token(self) -> dict[str, Any]:
        now = time.monotonic()
        self.tokens = {t: exp for t, exp in self.tokens.items() if exp > now}
        token = secrets.token_urlsafe(32)
        self.tokens[token] = now + self.token_lifespan
        self.tokens_issued += 1
        return {
            "access_token": token,
            "expires_in": self.token_lifespan,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile email",
        }

    def revoke_tokens(self) -> None:
        """Invalidate every access token (clients then get 401)."""
        self.tokens.clear()

    def authorize(self, request: Request, role: str) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or self.tokens.get(token, 0) <= time.monotonic():
            raise Answer.json(401, error="HTTP 401 Unauthorized")
        # Writes need manage-users; reads any of the user roles (docs/idp/keycloak.md#admin-token).
        allowed = role in self.roles if role == "manage-users" else bool(self.roles)
        if not allowed:
            raise Answer.json(403, error="unknown_error")

    # -- users ---------------------------------------------------------------------------------

    def user(self, user_id: str) -> dict[str, Any]:
        try:
            return self.users[user_id]
        except KeyError:
            raise _not_found() from None

    def create(self, rep: dict[str, Any]) -> dict[str, Any]:
        """Validate and store a new user; Keycloak picks the id and ignores one sent."""
        user = self._validated(rep, user_id=str(uuid.uuid4()))
        user["createdTimestamp"] = int(time.time() * 1000)
        user["enabled"] = bool(rep.get("enabled", False))
        user["emailVerified"] = bool(rep.get("emailVerified", False))
        user["requiredActions"] = list(rep.get("requiredActions") or [])
        password = _password_credential(rep)
        if password is not None and len(password) < self.password_min_length:
            raise Answer.json(400, errorMessage="Password policy not met")
        self.users[user["id"]] = user
        if password is not None:
            self.password_digests[user["id"]] = hashlib.sha256(password.encode()).hexdigest()
        return user

    def replace(self, user_id: str, rep: dict[str, Any]) -> None:
        """PUT: a full replace since KC 24.0.4 (docs/idp/keycloak.md#full-replace-on-update)."""
        current = self.user(user_id)
        rep = {"username": current["username"], **rep}
        user = self._validated(rep, user_id=user_id)
        user["createdTimestamp"] = current["createdTimestamp"]
        for kept in ("enabled", "emailVerified", "requiredActions"):  # kept when omitted
            user[kept] = rep[kept] if rep.get(kept) is not None else current[kept]
        self.users[user_id] = user

    def set_password(self, user_id: str, credential: dict[str, Any]) -> None:
        user = self.user(user_id)
        value = credential.get("value")
        if not isinstance(value, str) or not value:
            raise Answer.json(400, errorMessage="No password provided")
        if len(value) < self.password_min_length:  # docs/idp/keycloak.md#set-password
            raise Answer.json(
                400,
                error="invalidPasswordMinLengthMessage",
                error_description=f"Invalid password: minimum length {self.password_min_length}.",
            )
        self.password_digests[user_id] = hashlib.sha256(value.encode()).hexdigest()
        if credential.get("temporary") and "UPDATE_PASSWORD" not in user["requiredActions"]:
            user["requiredActions"].append("UPDATE_PASSWORD")

    def delete(self, user_id: str) -> None:
        self.user(user_id)
        del self.users[user_id]
        self.password_digests.pop(user_id, None)

    def search(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """Users matching Keycloak's search parameters, ordered by username."""
        found = [u for u in self.users.values() if matches(u, params)]
        return sorted(found, key=lambda u: u["username"])

    def _validated(self, rep: dict[str, Any], *, user_id: str) -> dict[str, Any]:
        # Stored lower-cased (docs/idp/keycloak.md#user-representation).
        username = str(rep.get("username") or "").strip().lower()
        if not username:
            raise Answer.json(400, errorMessage="User name is missing")
        email = str(rep["email"]).strip().lower() if rep.get("email") else None
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
            raise Answer.json(
                400, field="email", errorMessage="error-invalid-email", params=["email", email]
            )
        self._check_unique("username", username, user_id)
        if email is not None:
            self._check_unique("email", email, user_id)
        return {
            "id": user_id,
            "username": username,
            "firstName": rep.get("firstName") or None,
            "lastName": rep.get("lastName") or None,
            "email": email,
            "attributes": self._kept_attributes(rep.get("attributes")),
        }

    def _check_unique(self, name: str, value: str, user_id: str) -> None:
        if any(u[name] == value and u["id"] != user_id for u in self.users.values()):
            raise Answer.json(409, errorMessage=f"User exists with same {name}")

    def _kept_attributes(self, attributes: Any) -> dict[str, list[str]]:
        # Custom attributes are silently dropped unless declared or the realm's unmanaged
        # attribute policy lets admins write them (docs/idp/keycloak.md#unmanaged-attributes).
        declared = {a.get("name") for a in self.declared}
        kept = self.unmanaged_policy in KEPT_POLICIES
        return {
            str(name): [str(v) for v in (values if isinstance(values, list) else [values])]
            for name, values in (attributes or {}).items()
            if name not in ROOT_ATTRIBUTES and (kept or name in declared)
        }

    # -- user profile --------------------------------------------------------------------------

    def profile(self) -> dict[str, Any]:
        root = [
            {"name": n, "displayName": f"${{{n}}}", "permissions": {"view": ["admin", "user"]}}
            for n in ROOT_ATTRIBUTES
        ]
        config: dict[str, Any] = {"attributes": root + self.declared, "groups": []}
        if self.unmanaged_policy:
            config["unmanagedAttributePolicy"] = self.unmanaged_policy
        return config

    def configure_profile(self, config: dict[str, Any]) -> None:
        attributes = config.get("attributes") or []
        self.declared = [a for a in attributes if a.get("name") not in ROOT_ATTRIBUTES]
        self.unmanaged_policy = config.get("unmanagedAttributePolicy")


def _password_credential(rep: dict[str, Any]) -> str | None:
    credentials = rep.get("credentials") or []
    values = [c.get("value") for c in credentials if c.get("type", "password") == "password"]
    return str(values[0]) if values else None

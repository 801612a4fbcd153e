"""A Keycloak emulator: the Admin REST API's user endpoints and the client-credentials token
endpoint of one realm, in memory, with fault injection.

It follows ``docs/idp/keycloak.md`` (comments link to its headings): Keycloak's paths,
status codes and error bodies, lower-cased usernames and e-mails, PUT as a full replace, and
custom attributes dropped unless the realm's unmanaged-attribute policy keeps them. The official
python-keycloak SDK runs against it in tests. ``app.state.keycloak`` is the realm (seed and
inspect it), ``app.state.faults`` the FaultInjector.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accord.emulators.faults import FaultConfig, FaultInjector

DEFAULT_REALM = "accord"
DEFAULT_CLIENT_ID = "accord-provisioner"
DEFAULT_CLIENT_SECRET = "accord-emulator-secret"
ALL_ROLES = frozenset({"manage-users", "view-users", "query-users"})
ROOT_ATTRIBUTES = ("username", "email", "firstName", "lastName")
# Policies that let an admin write unmanaged attributes (docs/idp/keycloak.md#unmanaged-attributes).
KEPT_POLICIES = {"ENABLED", "ADMIN_EDIT"}
BAD_CLIENT = "Invalid client or Invalid client credentials"


class KeycloakDialect:
    """Keycloak's faults; its 429s come from proxies (docs/idp/keycloak.md#rate-limiting)."""

    def server_error(self, status: int) -> Response:
        return JSONResponse({"error": "unknown_error"}, status_code=status)

    def rate_limited(self, limit: int, reset_epoch: int) -> Response:
        wait = max(1, reset_epoch - int(time.time()))
        return JSONResponse(
            {"error": "too_many_requests"}, status_code=429, headers={"Retry-After": str(wait)}
        )

    def rate_limit_headers(self, limit: int, remaining: int, reset_epoch: int) -> dict[str, str]:
        return {}


class Answer(Exception):
    """Stop handling the request and send this response."""

    def __init__(self, status: int, **body: Any) -> None:
        super().__init__(status)
        self.response = JSONResponse(body, status_code=status)


def _not_found() -> Answer:
    return Answer(404, error="User not found")  # docs/idp/keycloak.md#error-bodies


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
            raise Answer(401, error="HTTP 401 Unauthorized")
        # Writes need manage-users; reads any of the user roles (docs/idp/keycloak.md#admin-token).
        allowed = role in self.roles if role == "manage-users" else bool(self.roles)
        if not allowed:
            raise Answer(403, error="unknown_error")

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
            raise Answer(400, errorMessage="Password policy not met")
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
            raise Answer(400, errorMessage="No password provided")
        if len(value) < self.password_min_length:  # docs/idp/keycloak.md#set-password
            raise Answer(
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
        found = [u for u in self.users.values() if _matches(u, params)]
        return sorted(found, key=lambda u: u["username"])

    def _validated(self, rep: dict[str, Any], *, user_id: str) -> dict[str, Any]:
        # Stored lower-cased (docs/idp/keycloak.md#user-representation).
        username = str(rep.get("username") or "").strip().lower()
        if not username:
            raise Answer(400, errorMessage="User name is missing")
        email = str(rep["email"]).strip().lower() if rep.get("email") else None
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
            raise Answer(
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
            raise Answer(409, errorMessage=f"User exists with same {name}")

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


# -- representations and search --------------------------------------------------------------


def representation(user: dict[str, Any], *, brief: bool = False) -> dict[str, Any]:
    """A UserRepresentation in Keycloak's field order, nulls left out."""
    rep = {k: user[k] for k in ("id", "username", "firstName", "lastName", "email")}
    rep["emailVerified"] = user["emailVerified"]
    if user["attributes"] and not brief:
        rep["attributes"] = user["attributes"]
    rep.update(createdTimestamp=user["createdTimestamp"], enabled=user["enabled"], totp=False)
    rep.update(disableableCredentialTypes=[], requiredActions=user["requiredActions"])
    rep["notBefore"] = 0
    if not brief:
        rep["access"] = {"manageGroupMembership": True, "view": True, "mapRoles": True}
        rep["access"].update(impersonate=False, manage=True)
    return {k: v for k, v in rep.items() if v is not None}


def _is_true(value: str | None) -> bool:
    return (value or "").lower() == "true"  # python-keycloak sends True/False


def _matches(user: dict[str, Any], params: dict[str, str]) -> bool:
    exact = _is_true(params.get("exact"))
    for name in ROOT_ATTRIBUTES:
        if name in params:  # substring unless exact=true (docs/idp/keycloak.md#search)
            have, wanted = (user[name] or "").lower(), params[name].lower()
            if (have != wanted) if exact else (wanted not in have):
                return False
    if "search" in params and not _search_matches(user, params["search"]):
        return False
    for flag in ("enabled", "emailVerified"):
        if flag in params and user[flag] != _is_true(params[flag]):
            return False
    pairs = (term.partition(":") for term in params.get("q", "").split())
    return all(value in user["attributes"].get(key, []) for key, _, value in pairs)


def _search_matches(user: dict[str, Any], search: str) -> bool:
    # A prefix match since keycloak#8346, "*" a wildcard, quotes for exact; exact=... does not
    # apply (docs/idp/keycloak.md#search).
    search = search.strip().lower()
    if len(search) > 1 and search.startswith('"') and search.endswith('"'):
        pattern = re.escape(search[1:-1])
    else:
        pattern = re.escape(search).replace(r"\*", ".*") + ".*"
    fields = (user[n] for n in ROOT_ATTRIBUTES)
    return any(re.fullmatch(pattern, (value or "").lower()) for value in fields)


def _password_credential(rep: dict[str, Any]) -> str | None:
    credentials = rep.get("credentials") or []
    values = [c.get("value") for c in credentials if c.get("type", "password") == "password"]
    return str(values[0]) if values else None


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise Answer(400, error="invalid_request", error_description="Cannot parse the JSON")
    return body


def _paging(params: dict[str, str]) -> tuple[int, int]:
    try:  # first defaults to -1 (treated as 0), max to 100
        return max(0, int(params.get("first", -1))), int(params.get("max", 100))
    except ValueError:
        raise Answer(400, error="invalid_request", error_description="Bad paging") from None


# -- HTTP ------------------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]


class _Api:
    """The routes of one emulated Keycloak server, bound to its realm and injector."""

    def __init__(self, realm: Realm, faults: FaultInjector) -> None:
        self.realm = realm
        self.faults = faults

    def guard(self, endpoint: str, role: str | None, handler: Handler) -> Handler:
        """Faults first (they stand for the network or a proxy), then realm and token."""

        async def route(request: Request) -> Response:
            replaced = await self.faults.before(endpoint)
            if replaced is not None:
                return replaced
            try:
                if role is not None:
                    self.realm.authorize(request, role)
                if request.path_params["realm"] != self.realm.name:
                    raise Answer(404, error="Realm not found." if role else "Realm does not exist")
                return await handler(request)
            except Answer as answer:
                return answer.response

        return route

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        if not form.get("grant_type"):
            raise Answer(
                400, error="invalid_request", error_description="Missing form parameter: grant_type"
            )
        client_id, secret = _basic_credentials(request) or (
            form.get("client_id"),
            form.get("client_secret"),
        )
        # Unknown client, then wrong secret (docs/idp/keycloak.md#admin-token)
        if client_id != self.realm.client_id:
            raise Answer(401, error="invalid_client", error_description=BAD_CLIENT)
        if secret != self.realm.client_secret:
            raise Answer(401, error="unauthorized_client", error_description=BAD_CLIENT)
        if form["grant_type"] != "client_credentials":
            raise Answer(400, error="unsupported_grant_type", error_description="Unsupported")
        return JSONResponse(self.realm.issue_token())

    async def create_user(self, request: Request) -> Response:
        user = self.realm.create(await _json(request))
        location = f"{str(request.base_url).rstrip('/')}{request.url.path}/{user['id']}"
        if self.faults.ghost("create_user"):  # stored; the answer is lost
            return await self.faults.ghost_response()
        # An empty body: the id is in Location (docs/idp/keycloak.md#create).
        return Response(status_code=201, headers={"Location": location})

    async def list_users(self, request: Request) -> Response:
        params = dict(request.query_params)
        first, size = _paging(params)
        brief = _is_true(params.get("briefRepresentation"))
        page = self.realm.search(params)[first : first + size]
        return JSONResponse([representation(u, brief=brief) for u in page])

    async def count_users(self, request: Request) -> Response:
        return JSONResponse(len(self.realm.search(dict(request.query_params))))

    async def get_user(self, request: Request) -> Response:
        return JSONResponse(representation(self.realm.user(request.path_params["id"])))

    async def update_user(self, request: Request) -> Response:
        self.realm.replace(request.path_params["id"], await _json(request))
        return Response(status_code=204)

    async def reset_password(self, request: Request) -> Response:
        self.realm.set_password(request.path_params["id"], await _json(request))
        return Response(status_code=204)

    async def delete_user(self, request: Request) -> Response:
        self.realm.delete(request.path_params["id"])
        return Response(status_code=204)

    async def get_profile(self, request: Request) -> Response:
        return JSONResponse(self.realm.profile())

    async def put_profile(self, request: Request) -> Response:
        self.realm.configure_profile(await _json(request))
        return JSONResponse(self.realm.profile())

    def routes(self) -> list[Route]:
        users = "/admin/realms/{realm}/users"
        read, write = "view-users", "manage-users"
        table: list[tuple[str, str, str, str | None, Handler]] = [
            ("/realms/{realm}/protocol/openid-connect/token", "POST", "token", None, self.token),
            (users, "POST", "create_user", write, self.create_user),
            (users, "GET", "list_users", read, self.list_users),
            (f"{users}/count", "GET", "count_users", read, self.count_users),
            (f"{users}/profile", "GET", "get_profile", read, self.get_profile),
            (f"{users}/profile", "PUT", "put_profile", write, self.put_profile),
            (f"{users}/{{id}}", "GET", "get_user", read, self.get_user),
            (f"{users}/{{id}}", "PUT", "update_user", write, self.update_user),
            (f"{users}/{{id}}", "DELETE", "delete_user", write, self.delete_user),
            (f"{users}/{{id}}/reset-password", "PUT", "reset_password", write, self.reset_password),
        ]
        return [
            Route(path, self._named(endpoint, role, handler), methods=[method])
            for path, method, endpoint, role, handler in table
        ]

    def _named(self, endpoint: str, role: str | None, handler: Handler) -> Handler:
        if endpoint != "list_users":
            return self.guard(endpoint, role, handler)
        listing, searching = (self.guard(e, role, handler) for e in ("list_users", "search_users"))

        async def route(request: Request) -> Response:  # a filtered GET /users is a search
            filtered = set(request.query_params) - {"first", "max", "briefRepresentation"}
            return await (searching if filtered else listing)(request)

        return route


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    return client_id, secret


def create_app(
    *,
    realm: str = DEFAULT_REALM,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    unmanaged_attributes: bool = True,
    faults: FaultConfig | None = None,
    password_min_length: int = 8,
    token_lifespan: int = 300,
    roles: frozenset[str] = ALL_ROLES,
) -> Starlette:
    """An emulated Keycloak serving one realm and one confidential service-account client."""
    state = Realm(
        realm,
        client_id,
        client_secret,
        unmanaged_policy="ENABLED" if unmanaged_attributes else None,
        password_min_length=password_min_length,
        token_lifespan=token_lifespan,
        roles=roles,
    )
    injector = FaultInjector(KeycloakDialect(), faults)
    app = Starlette(routes=[*_Api(state, injector).routes(), *injector.routes()])
    app.state.keycloak = state
    app.state.faults = injector
    return app

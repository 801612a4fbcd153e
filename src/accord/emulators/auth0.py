"""An Auth0 Management API v2 emulator (Starlette), faithful to ``docs/idp/auth0.md``.

Comments link to that page's headings. Served:

- ``POST /oauth/token``: client-credentials grant, JSON or form body
  (docs/idp/auth0.md#management-api-token).
- ``/api/v2/users`` (list/search, create), ``/api/v2/users/{id}`` (get, patch, delete),
  ``/api/v2/users-by-email``, with Auth0's error bodies (docs/idp/auth0.md#error-bodies).
- ``/api/v2/jobs/users-exports`` and ``/api/v2/jobs/{id}``: the bulk export Auth0 recommends for
  full listings (docs/idp/auth0.md#bulk-user-export); the file (gzipped NDJSON) is served at the
  job's ``location``.
- ``/__faults``: run-time fault control (``accord.emulators.faults``).

Every admin endpoint passes through the ``FaultInjector`` under a name (``token``, ``list_users``,
``create_user``, ``get_user``, ``update_user``, ``delete_user``, ``users_by_email``,
``export_users``, ``get_job``, ``download_export``); creates can be ghosts. Every response carries
``x-ratelimit-*`` headers (docs/idp/auth0.md#rate-limits). Search (``GET /api/v2/users``) sees a
user only ``search_lag_ms`` after its creation (docs/idp/auth0.md#search-is-eventually-consistent);
everything else is immediately consistent.

The app exposes ``app.state.tenant`` (the in-memory ``Auth0Tenant``) and ``app.state.faults``
for tests in the same process.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accord.emulators.faults import FaultConfig, FaultInjector


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


DEFAULT_CLIENT_ID = "accord-emulator-client"
DEFAULT_CLIENT_SECRET = "accord-emulator-secret"
DEFAULT_CONNECTION = "Username-Password-Authentication"
DEFAULT_SCOPES = frozenset({"read:users", "create:users", "update:users", "delete:users"})
TOKEN_TTL_SECONDS = 86400  # docs/idp/auth0.md#management-api-token
# At most 1000 results reachable, 100 a page, 50 without paging parameters
# (docs/idp/auth0.md#listing-and-paging-limits).
PAGING_CAP = 1000
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 50
MIN_PASSWORD_LENGTH = 8  # the emulated connection's password policy
NORMALIZED_FIELDS = frozenset({"email", "name", "given_name", "family_name", "nickname"})
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
PAGING_MESSAGE = (  # docs/idp/auth0.md#error-bodies
    "You can only page through the first 1000 records. "
    "See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation"
)
_QUERY_TERM = re.compile(r'^(?P<field>[\w.]+):(?P<value>"[^"]*"|\S+)$')


class Answer(Exception):
    """A finished response, raised from anywhere inside a handler."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def api_error(status: int, message: str, error_code: str | None = None, **extra: Any) -> Answer:
    """The Management API's error shape (docs/idp/auth0.md#error-bodies)."""
    body: dict[str, Any] = {"statusCode": status, "error": HTTPStatus(status).phrase}
    body["message"] = message
    if error_code:
        body["errorCode"] = error_code
    return Answer(JSONResponse({**body, **extra}, status_code=status))


def oauth_error(status: int, error: str, description: str) -> Answer:
    """``/oauth/token`` answers in OAuth's error shape, not the Management API's."""
    body = {"error": error, "error_description": description}
    return Answer(JSONResponse(body, status_code=status))


class Auth0Dialect:
    """How Auth0 fails on the wire (docs/idp/auth0.md#error-bodies, #rate-limits)."""

    def server_error(self, status: int) -> Response:
        return api_error(status, "The service is temporarily unavailable.").response

    def rate_limited(self, limit: int, reset_epoch: int) -> Response:
        answer = api_error(429, "Global limit has been reached", "too_many_requests")
        answer.response.headers.update(self.rate_limit_headers(limit, 0, reset_epoch))
        return answer.response

    def rate_limit_headers(self, limit: int, remaining: int, reset_epoch: int) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(reset_epoch),  # UNIX epoch seconds
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _required(body: dict[str, Any], key: str) -> Any:
    if body.get(key) in (None, ""):
        message = f"Payload validation error: 'Missing required property: {key}'."
        raise api_error(400, message, "invalid_body")
    return body[key]


def _only(body: dict[str, Any], allowed: frozenset[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        message = f"Payload validation error: 'Additional properties not allowed: {extra[0]}'."
        raise api_error(400, message, "invalid_body")


def _check_email(email: Any) -> str:
    if not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
        message = (
            f"Payload validation error: 'Object didn't pass validation for format email: {email}'."
        )
        raise api_error(400, message, "invalid_body")
    return email


def _pluck(record: Any, path: str) -> Any:
    """``identities[0].connection`` style paths; None when absent."""
    for key in re.findall(r"[^.\[\]]+", path):
        if isinstance(record, list) and key.isdigit() and int(key) < len(record):
            record = record[int(key)]
        elif isinstance(record, dict) and key in record:
            record = record[key]
        else:
            return None
    return record


def _search_values(profile: dict[str, Any], field_name: str) -> list[str]:
    if field_name == "email.domain":
        return [str(profile.get("email", "")).rpartition("@")[2]]
    values = [profile]
    for key in field_name.split("."):
        values = [v[key] for v in values if isinstance(v, dict) and key in v]
        values = [x for v in values for x in (v if isinstance(v, list) else [v])]
    return [str(v) for v in values]


def _parse_query(q: str) -> list[tuple[str, str, bool]]:
    """Lucene, the subset the emulator knows: ``field:value`` / ``field:"value"`` / ``field:pre*``
    terms joined by AND; ``*`` matches all."""
    terms = []
    for part in (p.strip() for p in q.split(" AND ")):
        if part in ("", "*", "*:*"):
            continue
        match = _QUERY_TERM.match(part)
        if match is None:
            raise _query_error(f"unsupported query '{q}'")
        value = match["value"]
        prefix = not value.startswith('"') and value.endswith("*")
        value = value.strip('"')
        terms.append((match["field"], value.rstrip("*") if prefix else value, prefix))
    return terms


def _query_error(problem: str) -> Answer:
    return api_error(400, f"Query validation error: {problem}.", "invalid_query_string")


def _matches(profile: dict[str, Any], terms: list[tuple[str, str, bool]]) -> bool:
    for field_name, wanted, prefix in terms:
        fold = field_name in NORMALIZED_FIELDS  # search is case-insensitive on these only
        values = [v.lower() if fold else v for v in _search_values(profile, field_name)]
        wanted = wanted.lower() if fold else wanted
        if not any(v == wanted or (prefix and v.startswith(wanted)) for v in values):
            return False
    return True


def _project(profile: dict[str, Any], params: Any) -> dict[str, Any]:
    """``fields`` / ``include_fields``."""
    names = {n for n in (params.get("fields") or "").split(",") if n}
    if not names:
        return profile
    include = (params.get("include_fields") or "true").lower() != "false"
    return {k: v for k, v in profile.items() if (k in names) == include}


def _int_param(params: Any, name: str, default: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise _query_error(f"'Invalid value {raw}' on property {name}")
    return value


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
        _only(body, CREATE_FIELDS)
        if _required(body, "connection") != self.connection:
            raise api_error(400, "The connection does not exist.", "inexistent_connection")
        # Database connections store e-mails lower-cased (docs/idp/auth0.md#stored-e-mail-case).
        email = _check_email(_required(body, "email")).lower()
        password = _required(body, "password")  # mandatory for database connections (API ref.)
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
            "created_at": _now(),
            "updated_at": _now(),
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
        _only(body, UPDATE_FIELDS)
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
        profile["updated_at"] = _now()
        return profile

    def _new_email(self, stored: StoredUser, email: Any) -> str:
        connection = stored.profile["identities"][0]["connection"]
        email = _check_email(email).lower() if connection == self.connection else email
        owner = self._email_owner(email, connection)
        if owner not in (None, stored.profile["user_id"]):
            # 400, not 409 (docs/idp/auth0.md#a-taken-e-mail-on-update)
            raise api_error(400, "The specified new email already exists")
        return email

    def by_email(self, email: str) -> list[dict[str, Any]]:
        """Exact, case-sensitive, across connections (docs/idp/auth0.md#lookup-by-e-mail)."""
        return [s.profile for s in self.users.values() if s.profile.get("email") == email]

    def search(self, q: str | None, sort: str | None, visible: Callable[[float], bool]) -> list:
        terms = _parse_query(q or "")
        found = [s.profile for s in self.users.values() if visible(s.indexed_at)]  # it lags
        found = [p for p in found if _matches(p, terms)]
        if sort:
            key, _, order = sort.partition(":")
            if order not in ("1", "-1"):
                raise _query_error(f"'Invalid sort {sort}'")
            found.sort(key=lambda p: str(p.get(key, "")), reverse=order == "-1")
        return found

    # -- bulk export (docs/idp/auth0.md#bulk-user-export) ----------------------------------------

    def start_export(self, body: dict[str, Any]) -> dict[str, Any]:
        _only(body, frozenset({"connection_id", "format", "limit", "fields"}))
        connection_id = body.get("connection_id")
        if connection_id not in (None, self.connection_id):
            raise api_error(400, "The connection does not exist.", "inexistent_connection")
        if body.get("format", "csv") != "json":
            raise api_error(
                400, "The emulator exports format 'json' (NDJSON) only.", "invalid_body"
            )
        fields = body.get("fields") or [{"name": n} for n in ("user_id", "email", "name")]
        users = [s.profile for s in self.users.values()]
        if connection_id:
            users = [p for p in users if p["identities"][0]["connection"] == self.connection]
        job_id = "job_" + secrets.token_hex(8)
        self.export_files[job_id] = _ndjson_gz(users[: body.get("limit") or None], fields)
        job = {"type": "users_export", "status": "pending", "format": "json", "fields": fields}
        job |= {"created_at": _now(), "id": job_id}
        if connection_id:
            job |= {"connection_id": connection_id, "connection": self.connection}
        self.jobs[job_id] = {**job, "polls": 0}
        return job

    def poll_job(self, job_id: str, base_url: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise api_error(404, "The job does not exist.", "inexistent_job")
        job["polls"] += 1
        public = {k: v for k, v in job.items() if k != "polls"}
        if job["polls"] <= self.export_polls:
            return {**public, "status": "processing", "percentage_done": 50}
        location = f"{base_url.rstrip('/')}/user-exports/{job_id}/emulator.json.gz"
        done = {"status": "completed", "location": location, "percentage_done": 100}
        return {**public, **done, "time_left_seconds": 0}


def _ndjson_gz(users: list[dict[str, Any]], fields: list[dict[str, str]]) -> bytes:
    lines = []
    for profile in users:
        record = {f.get("export_as") or f["name"]: _pluck(profile, f["name"]) for f in fields}
        lines.append(json.dumps({k: v for k, v in record.items() if v is not None}))
    return gzip.compress(("\n".join(lines) + "\n").encode() if lines else b"")


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise api_error(400, "Invalid request payload JSON format") from None
    if not isinstance(body, dict):
        raise api_error(400, "Payload validation error: 'Expected type object'.", "invalid_body")
    return body


async def _token_form(request: Request) -> dict[str, str]:
    """JSON or form-encoded: the SDK sends both (docs/idp/auth0.md#management-api-token)."""
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            form = {k: v for k, v in json.loads(raw or b"{}").items() if isinstance(v, str)}
        except (ValueError, AttributeError):
            raise oauth_error(400, "invalid_request", "Invalid JSON body") from None
    else:
        form = dict(parse_qsl(raw.decode(errors="replace")))
    return form


class _RateLimitHeaders:
    """``x-ratelimit-*`` headers on every response without them (docs/idp/auth0.md#rate-limits)."""

    def __init__(self, app: ASGIApp, faults: FaultInjector) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.faults.headers().items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


class _Api:
    """The handlers; each runs behind ``endpoint`` (faults first, then the bearer check)."""

    def __init__(self, tenant: Auth0Tenant, faults: FaultInjector) -> None:
        self.tenant = tenant
        self.faults = faults

    def endpoint(self, name: str, scope: str | None, handler: Callable) -> Callable:
        async def run(request: Request) -> Response:
            replacement = await self.faults.before(name)
            if replacement is not None:
                return replacement
            try:
                if scope:
                    self.tenant.authorize(request.headers.get("authorization"), scope)
                return await handler(request)
            except Answer as answer:
                return answer.response

        return run

    async def token(self, request: Request) -> Response:
        host = request.headers.get("host", "")
        return JSONResponse(self.tenant.issue_token(await _token_form(request), host))

    async def list_users(self, request: Request) -> Response:
        params = request.query_params
        page = _int_param(params, "page", 0)
        per_page = _int_param(params, "per_page", DEFAULT_PER_PAGE)
        if per_page > MAX_PER_PAGE:
            raise _query_error(f"'per_page' must be at most {MAX_PER_PAGE}")
        if page * per_page >= PAGING_CAP:
            raise api_error(400, PAGING_MESSAGE, "invalid_paging")
        found = self.tenant.search(params.get("q"), params.get("sort"), self.faults.search_visible)
        start = page * per_page
        users = [_project(p, params) for p in found[start : min(start + per_page, PAGING_CAP)]]
        if (params.get("include_totals") or "").lower() != "true":
            return JSONResponse(users)  # a bare array unless include_totals=true
        totals = {"start": start, "limit": per_page, "length": len(users), "total": len(found)}
        return JSONResponse({**totals, "users": users})

    async def create_user(self, request: Request) -> Response:
        profile = self.tenant.create_user(await _json_body(request))
        if self.faults.ghost("create_user"):
            return await self.faults.ghost_response()
        return JSONResponse(profile, status_code=201)

    async def get_user(self, request: Request) -> Response:
        # The path arrives URL-decoded: the SDK sends auth0%7C... (docs/idp/auth0.md#user-ids).
        profile = self.tenant.get(request.path_params["id"]).profile
        return JSONResponse(_project(profile, request.query_params))

    async def update_user(self, request: Request) -> Response:
        body = await _json_body(request)
        return JSONResponse(self.tenant.update_user(request.path_params["id"], body))

    async def delete_user(self, request: Request) -> Response:
        self.tenant.users.pop(request.path_params["id"], None)
        return Response(status_code=204)  # even if unknown (docs/idp/auth0.md#delete-is-idempotent)

    async def users_by_email(self, request: Request) -> Response:
        email = request.query_params.get("email")
        if not email:
            raise _query_error("'Missing required property: email'")
        found = self.tenant.by_email(email)
        return JSONResponse([_project(p, request.query_params) for p in found])

    async def export_users(self, request: Request) -> Response:
        return JSONResponse(self.tenant.start_export(await _json_body(request)), status_code=201)

    async def get_job(self, request: Request) -> Response:
        job = self.tenant.poll_job(request.path_params["id"], str(request.base_url))
        return JSONResponse(job)

    async def download_export(self, request: Request) -> Response:
        # Strict on purpose: the location is a signed URL on a storage host, not the tenant, so a
        # client that sends its Management API token there leaks it.
        if "authorization" in request.headers:
            return Response("Authorization header not accepted on a signed URL", status_code=400)
        content = self.tenant.export_files.get(request.path_params["job"])
        if content is None:
            return Response("NoSuchKey", status_code=404)
        return Response(content, media_type="application/gzip")

    def routes(self) -> list[Route]:
        table = [
            ("/oauth/token", "POST", "token", None, self.token),
            ("/api/v2/users", "GET", "list_users", "read:users", self.list_users),
            ("/api/v2/users", "POST", "create_user", "create:users", self.create_user),
            ("/api/v2/users-by-email", "GET", "users_by_email", "read:users", self.users_by_email),
            ("/api/v2/users/{id:path}", "GET", "get_user", "read:users", self.get_user),
            ("/api/v2/users/{id:path}", "PATCH", "update_user", "update:users", self.update_user),
            ("/api/v2/users/{id:path}", "DELETE", "delete_user", "delete:users", self.delete_user),
            ("/api/v2/jobs/users-exports", "POST", "export_users", "read:users", self.export_users),
            ("/api/v2/jobs/{id}", "GET", "get_job", "read:users", self.get_job),
            ("/user-exports/{job}/{file}", "GET", "download_export", None, self.download_export),
        ]
        return [
            Route(path, self.endpoint(name, scope, handler), methods=[method])
            for path, method, name, scope, handler in table
        ]


def create_app(
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    connection: str = DEFAULT_CONNECTION,
    faults: FaultConfig | None = None,
) -> Starlette:
    """An emulated Auth0 tenant with one database connection, empty, on its own state."""
    injector = FaultInjector(Auth0Dialect(), faults)
    tenant = Auth0Tenant(client_id=client_id, client_secret=client_secret, connection=connection)
    api = _Api(tenant, injector)
    app = Starlette(
        routes=[*api.routes(), *injector.routes()],
        middleware=[Middleware(_RateLimitHeaders, faults=injector)],
    )
    app.state.tenant = tenant
    app.state.faults = injector
    return app

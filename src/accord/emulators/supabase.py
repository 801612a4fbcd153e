"""Supabase Auth (GoTrue) admin API emulator, served like a hosted project: Auth under ``/auth/v1``.

Faithful to ``docs/idp/supabase.md`` (GoTrue ``internal/api/admin.go``, ``errors.go``,
``pagination.go``, ``models/user.go``): the gateway's ``apikey`` check and GoTrue's
Bearer JWT check; admin create → 200 with the full user, caller-chosen ``id``, 422
``email_exists``; admin create skips the password policy, admin update applies it (422
``weak_password``); a duplicate ``id`` or an update to a taken e-mail are bare 500s (unique
violations GoTrue does not handle); delete → 200 ``{}``; list with 1-based ``page``/``per_page``
(empty = default), ``X-Total-Count`` and ``Link``; ``filter`` as GoTrue's unescaped
``LIKE '%x%'`` on e-mail or ``ILIKE`` on ``user_metadata.full_name``. Error bodies follow the
request's ``X-Supabase-Api-Version``. Faults come from the shared ``FaultInjector``
(endpoints ``create_user``, ``get_user``, ``list_users``, ``update_user``, ``delete_user``).
Not emulated: phone OTP, password hashes as input beyond a presence check, keyset pagination
(an experimental GoTrue flag), bans, and sign-in: passwords are not kept at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accord.emulators.faults import FaultConfig, FaultInjector

DEFAULT_JWT_SECRET = "accord-emulator-jwt-secret-with-at-least-32-characters"
ADMIN_ROLES = ("service_role", "supabase_admin")  # GOTRUE_JWT_ADMIN_ROLES default
AUD = "authenticated"
API_VERSION = "2024-01-01"
DUPLICATE_EMAIL = "A user with this email address has already been registered"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BEARER = re.compile(r"(?i)^bearer (\S+)$")  # GoTrue's bearerRegexp


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_jwt(claims: dict[str, Any], secret: str = DEFAULT_JWT_SECRET) -> str:
    """An HS256 JWT, like the keys a Supabase project hands out."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def verify_jwt(token: str, secret: str) -> dict[str, Any]:
    """The claims of an HS256 JWT signed with ``secret``; ValueError (golang-jwt's words) if not."""
    try:
        head, body, signature = token.split(".")
        header, claims = json.loads(_unb64(head)), json.loads(_unb64(body))
        digest = _unb64(signature)
    except (ValueError, TypeError) as exc:  # binascii.Error and JSONDecodeError are ValueErrors
        raise ValueError(f"token is malformed: {exc}") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        raise ValueError("token is unverifiable: signing method is not HS256")
    expected = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, digest):
        raise ValueError("token signature is invalid: signature is invalid")
    if isinstance(claims.get("exp"), int | float) and claims["exp"] < time.time():
        raise ValueError("token has invalid claims: token is expired")
    return claims


DEFAULT_SERVICE_ROLE_KEY = sign_jwt({"iss": "accord-emulator", "role": "service_role"})
DEFAULT_ANON_KEY = sign_jwt({"iss": "accord-emulator", "role": "anon"})

# -- errors: the body shape follows the request's X-Supabase-Api-Version ------------------------
# (docs/idp/supabase.md#error-bodies)

_new_api: ContextVar[bool] = ContextVar("gotrue_new_api", default=False)


def _wants_new_api(request: Request) -> bool:
    value = request.headers.get("x-supabase-api-version", "")
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)) and value >= API_VERSION


def api_error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    """A GoTrue error, in the shape this request asked for."""
    headers = {"x-sb-error-code": code}
    if _new_api.get():
        headers["X-Supabase-Api-Version"] = API_VERSION  # echoed on errors only
        return JSONResponse({"code": code, "message": message, **extra}, status, headers)
    body = {"code": status, "error_code": code, "msg": message, **extra}
    if status >= 500:
        body["error_id"] = str(uuid.uuid4())
    return JSONResponse(body, status, headers)


def _unique_violation(constraint: str, detail: str, new_api_message: str) -> JSONResponse:
    # Unhandled 23505: the initial API shows the Postgres error (utilities/postgres.go).
    if _new_api.get():
        return api_error(500, "unexpected_failure", new_api_message)
    message = f'duplicate key value violates unique constraint "{constraint}"'
    return JSONResponse({"code": "23505", "message": message, "detail": detail}, 500)


_GATEWAY_5XX = {
    502: "An invalid response was received from the upstream server",
    503: "The upstream server is currently unavailable",
    504: "The upstream server is timing out",
}


class GoTrueDialect:
    """Fault responses: 500 from GoTrue itself, 502-504 from the hosted gateway."""

    def server_error(self, status: int) -> Response:
        if status in _GATEWAY_5XX:
            return JSONResponse({"message": _GATEWAY_5XX[status]}, status)
        message = "Unexpected failure, please check server logs for more information"
        return api_error(status, "unexpected_failure", message)

    def rate_limited(self, limit: int, reset_epoch: int) -> Response:
        response = api_error(429, "over_request_rate_limit", "Request rate limit reached")
        response.headers["Retry-After"] = str(max(1, reset_epoch - int(time.time())))
        return response

    def rate_limit_headers(self, limit: int, remaining: int, reset_epoch: int) -> dict[str, str]:
        return {}  # GoTrue sends none on success


# -- the store ---------------------------------------------------------------------------------


def _now() -> str:
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
        now, user_id = _now(), params.get("id") or str(uuid.uuid4())
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
        now = _now()
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


# -- request parsing ---------------------------------------------------------------------------

_STRINGS = ("id", "aud", "role", "email", "phone", "password", "password_hash", "ban_duration")
_FIELD_TYPES: dict[str, type] = {
    **dict.fromkeys(_STRINGS, str),
    **dict.fromkeys(("email_confirm", "phone_confirm", "should_soft_delete"), bool),
    **dict.fromkeys(("user_metadata", "app_metadata"), dict),
}


async def _params(request: Request) -> dict[str, Any] | JSONResponse:
    """The JSON body as GoTrue's AdminUserParams would decode it, or its 400."""
    try:
        body = json.loads(await request.body())
        if not isinstance(body, dict):
            raise ValueError("json: cannot unmarshal into Go value of type api.AdminUserParams")
        for key, value in body.items():
            expected = _FIELD_TYPES.get(key)
            if expected and value is not None and not isinstance(value, expected):
                raise ValueError(f"json: cannot unmarshal into Go struct field .{key}")
    except ValueError as exc:
        return api_error(400, "bad_json", f"Could not parse request body as JSON: {exc}")
    return body


def _validate_email(email: str) -> str | JSONResponse:
    if len(email) > 255:
        return api_error(400, "validation_failed", "An email address is too long")
    if not _EMAIL.match(email):
        return api_error(
            400, "validation_failed", "Unable to validate email address: invalid format"
        )
    return email.lower()  # mail.go validateEmail


def _validate_id(raw: str) -> str | JSONResponse:
    try:
        parsed = uuid.UUID(raw)
    except ValueError:
        return api_error(400, "validation_failed", "ID must conform to the uuid v4 format")
    if parsed.int == 0:
        return api_error(400, "validation_failed", "ID cannot be a nil uuid")
    return str(parsed)


def _uint(raw: str, default: int) -> int:
    if raw == "":
        return default  # "page=" is absent (docs/idp/supabase.md#listing-and-pagination)
    if not raw.isdigit():
        raise ValueError(f'strconv.ParseUint: parsing "{raw}": invalid syntax')
    return int(raw)


def _sort_descending(request: Request) -> bool | JSONResponse:
    descending = True  # default created_at desc (admin.go adminUsers)
    for value in request.query_params.getlist("sort"):
        name, _, direction = value.partition(" ")
        if name != "created_at" or direction.upper() not in ("", "ASC", "DESC"):
            message = f"Bad Sort Parameters: bad field or direction for sort '{value}'"
            return api_error(400, "validation_failed", message)
        descending = direction.upper() != "ASC"
    return descending


def _link(request: Request, page: int, per_page: int, total: int) -> str:
    """pagination.go addPaginationHeaders: URLs as GoTrue sees them (gateway prefix stripped)."""
    pages = -(-total // per_page)
    query = dict(request.query_params)

    def url(to: int) -> str:
        return "/admin/users?" + urlencode(
            sorted({**query, "page": str(to)}.items()), quote_via=quote_plus
        )

    head = f'<{url(page + 1)}>; rel="next", ' if pages > page else ""
    return f'{head}<{url(pages)}>; rel="last"'


# -- the app -----------------------------------------------------------------------------------


class GoTrueAdmin:
    """The admin endpoints over one store, one key set and one fault injector."""

    def __init__(
        self, service_role_key: str, jwt_secret: str, faults: FaultInjector, min_password: int
    ) -> None:
        self.service_role_key = service_role_key
        self.jwt_secret = jwt_secret
        self.faults = faults
        self.store = GoTrueStore()
        self.password_min_length = min_password

    def _known_key(self, key: str) -> bool:
        if hmac.compare_digest(key, self.service_role_key):
            return True
        try:
            verify_jwt(key, self.jwt_secret)
        except ValueError:
            return False
        return True

    def authorize(self, request: Request) -> Response | None:
        """The gateway's apikey check, then GoTrue's (docs/idp/supabase.md#admin-credentials)."""
        apikey = request.headers.get("apikey") or request.query_params.get("apikey")
        if not apikey:  # Starlette matches header names case-insensitively (the SDK's apiKey)
            return JSONResponse({"message": "No API key found in request"}, 401)
        if not self._known_key(apikey):
            return JSONResponse({"message": "Invalid API key"}, 401)
        match = _BEARER.match(request.headers.get("authorization", ""))
        if not match:
            return api_error(401, "no_authorization", "This endpoint requires a valid Bearer token")
        if hmac.compare_digest(match[1], self.service_role_key):
            return None
        try:
            claims = verify_jwt(match[1], self.jwt_secret)
        except ValueError as exc:
            message = f"invalid JWT: unable to parse or verify signature, {exc}"
            return api_error(403, "bad_jwt", message)
        if claims.get("role") not in ADMIN_ROLES:
            return api_error(403, "not_admin", "User not allowed")
        return None

    def endpoint(self, name: str, handler: Any) -> Any:
        """Wrap a handler with the version context, the key check and fault injection."""

        async def run(request: Request) -> Response:
            _new_api.set(_wants_new_api(request))
            denied = self.authorize(request)
            if denied is not None:
                return denied
            fault = await self.faults.before(name)
            return fault if fault is not None else await handler(request)

        return run

    def _load(self, request: Request) -> dict[str, Any] | JSONResponse:
        try:
            user_id = str(uuid.UUID(request.path_params["user_id"]))
        except ValueError:
            return api_error(404, "validation_failed", "user_id must be an UUID")
        user = self.store.users.get(user_id)
        return user if user is not None else api_error(404, "user_not_found", "User not found")

    async def create_user(self, request: Request) -> Response:
        params = await _params(request)
        if isinstance(params, Response):
            return params
        checked = self._check_create(params)
        if isinstance(checked, Response):
            return checked
        if params.get("id") in self.store.users:  # tx.Create: users_pkey violation
            detail = f"Key (id)=({params['id']}) already exists."
            return _unique_violation("users_pkey", detail, "Database error creating new user")
        user = self.store.add(params)
        if self.faults.ghost("create_user"):
            return await self.faults.ghost_response()
        return JSONResponse(user)

    def _check_create(self, params: dict[str, Any]) -> Response | None:
        """adminUserCreate's checks, in its order; normalizes ``params`` in place."""
        email, phone = params.get("email") or "", params.get("phone") or ""
        if not email and not phone:
            message = "Cannot create a user without either an email or phone"
            return api_error(400, "validation_failed", message)
        if email:
            checked = _validate_email(email)
            if isinstance(checked, Response):
                return checked
            params["email"] = checked
            if self.store.owner("email", checked):
                return api_error(422, "email_exists", DUPLICATE_EMAIL)
        if self.store.owner("phone", phone):
            return api_error(422, "phone_exists", "Phone number already registered by another user")
        if params.get("password") is not None and params.get("password_hash"):
            message = "Only a password or a password hash should be provided"
            return api_error(400, "validation_failed", message)
        if len((params.get("password") or "").encode()) > 72:  # bcrypt.ErrPasswordTooLong
            return api_error(400, "validation_failed", "bcrypt: password length exceeds 72 bytes")
        if params.get("id"):
            checked = _validate_id(params["id"])
            if isinstance(checked, Response):
                return checked
            params["id"] = checked
        return None

    async def get_user(self, request: Request) -> Response:
        user = self._load(request)
        return user if isinstance(user, Response) else JSONResponse(user)

    async def update_user(self, request: Request) -> Response:
        user = self._load(request)
        if isinstance(user, Response):
            return user
        params = await _params(request)
        if isinstance(params, Response):
            return params
        rejected = self._check_update(user, params)
        if rejected is not None:
            return rejected
        self.store.update(user, params)
        return JSONResponse(user)

    def _check_update(self, user: dict[str, Any], params: dict[str, Any]) -> Response | None:
        if params.get("email"):
            checked = _validate_email(params["email"])
            if isinstance(checked, Response):
                return checked
            params["email"] = checked
        if params.get("password") is not None:
            rejected = self._password_strength(params["password"])
            if rejected is not None:
                return rejected
        owner = self.store.owner("email", params.get("email") or "")
        # An unhandled unique violation: 500 (docs/idp/supabase.md#update-to-a-taken-e-mail)
        if owner not in (None, user["id"]):
            detail = f"Key (email)=({params['email']}) already exists."
            return _unique_violation("users_email_partial_key", detail, "Error updating user")
        return None

    def _password_strength(self, password: str) -> Response | None:
        if len(password) > 72:  # password.go checkPasswordStrength
            return api_error(
                400, "validation_failed", "Password cannot be longer than 72 characters"
            )
        if len(password) < self.password_min_length:
            message = f"Password should be at least {self.password_min_length} characters."
            return api_error(422, "weak_password", message, weak_password={"reasons": ["length"]})
        return None

    async def delete_user(self, request: Request) -> Response:
        user = self._load(request)
        if isinstance(user, Response):
            return user
        params = await _params(request) if await request.body() else {}
        if isinstance(params, Response):
            return params
        if params.get("should_soft_delete"):  # approximated: GoTrue obfuscates, we clear
            user.update(deleted_at=_now(), email="", phone="", identities=[])
        else:
            del self.store.users[user["id"]]
        return JSONResponse({})

    async def list_users(self, request: Request) -> Response:
        descending = _sort_descending(request)
        if isinstance(descending, Response):
            return descending
        try:
            page = _uint(request.query_params.get("page", ""), 1)
            per_page = _uint(request.query_params.get("per_page", ""), 50)
        except ValueError as exc:
            return api_error(400, "validation_failed", f"Bad Pagination Parameters: {exc}")
        if per_page == 0:  # calculateTotalPages divides by zero: the recoverer answers
            return api_error(500, "unexpected_failure", "Internal Server Error")
        users = self.store.matching(request.query_params.get("filter", ""))
        if descending:
            users.reverse()
        start = (max(page, 1) - 1) * per_page  # pop's Paginate treats page 0 as 1
        headers = {
            "X-Total-Count": str(len(users)),
            "Link": _link(request, page, per_page, len(users)),
        }
        body = {"users": users[start : start + per_page], "aud": AUD}
        return JSONResponse(body, headers=headers)


def create_app(
    *,
    service_role_key: str = DEFAULT_SERVICE_ROLE_KEY,
    faults: FaultConfig | None = None,
    jwt_secret: str = DEFAULT_JWT_SECRET,
    password_min_length: int = 6,  # GOTRUE_PASSWORD_MIN_LENGTH's default
) -> Starlette:
    """The emulator as an ASGI app; ``app.state.faults`` is its FaultInjector."""
    injector = FaultInjector(GoTrueDialect(), faults)
    admin = GoTrueAdmin(service_role_key, jwt_secret, injector, password_min_length)
    users, user = "/auth/v1/admin/users", "/auth/v1/admin/users/{user_id}"
    app = Starlette(
        routes=[
            Route(users, admin.endpoint("create_user", admin.create_user), methods=["POST"]),
            Route(users, admin.endpoint("list_users", admin.list_users), methods=["GET"]),
            Route(user, admin.endpoint("get_user", admin.get_user), methods=["GET"]),
            Route(user, admin.endpoint("update_user", admin.update_user), methods=["PUT"]),
            Route(user, admin.endpoint("delete_user", admin.delete_user), methods=["DELETE"]),
            *injector.routes(),
        ]
    )
    app.state.faults = injector
    app.state.admin = admin
    return app

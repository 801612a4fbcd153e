"""The admin endpoints (``/auth/v1/admin/users``) and ``create_app``."""

from __future__ import annotations

import hmac
import re
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accord.emulators.faults import FaultConfig, FaultInjector
from accord.emulators.supabase.errors import (
    GoTrueDialect,
    api_error,
    follow_version,
    unique_violation,
)
from accord.emulators.supabase.keys import DEFAULT_JWT_SECRET, DEFAULT_SERVICE_ROLE_KEY, verify_jwt
from accord.emulators.supabase.params import (
    link,
    parse_params,
    sort_descending,
    uint,
    validate_email,
    validate_id,
)
from accord.emulators.supabase.store import AUD, GoTrueStore, go_duration, timestamp

ADMIN_ROLES = ("service_role", "supabase_admin")  # GOTRUE_JWT_ADMIN_ROLES default
DUPLICATE_EMAIL = "A user with this email address has already been registered"
_BEARER = re.compile(r"(?i)^bearer (\S+)$")  # GoTrue's bearerRegexp


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
            follow_version(request)
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
        params = await parse_params(request)
        if isinstance(params, Response):
            return params
        checked = self._check_create(params)
        if isinstance(checked, Response):
            return checked
        if params.get("id") in self.store.users:  # tx.Create: users_pkey violation
            detail = f"Key (id)=({params['id']}) already exists."
            return unique_violation("users_pkey", detail, "Database error creating new user")
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
            checked = validate_email(email)
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
            checked = validate_id(params["id"])
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
        params = await parse_params(request)
        if isinstance(params, Response):
            return params
        rejected = self._check_update(user, params)
        if rejected is not None:
            return rejected
        self.store.update(user, params)
        if self.faults.ghost_write("update_user"):  # applied; the answer is lost
            return await self.faults.ghost_response()
        return JSONResponse(user)

    def _check_update(self, user: dict[str, Any], params: dict[str, Any]) -> Response | None:
        ban = params.get("ban_duration")
        if ban and ban != "none" and go_duration(ban) is None:  # admin.go adminUserUpdate
            return api_error(
                400, "validation_failed", f'invalid format for ban duration: time: invalid "{ban}"'
            )
        if params.get("email"):
            checked = validate_email(params["email"])
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
            return unique_violation("users_email_partial_key", detail, "Error updating user")
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
        params = await parse_params(request) if await request.body() else {}
        if isinstance(params, Response):
            return params
        if params.get("should_soft_delete"):  # approximated: GoTrue obfuscates, we clear
            user.update(deleted_at=timestamp(), email="", phone="", identities=[])
        else:
            del self.store.users[user["id"]]
        return JSONResponse({})

    async def list_users(self, request: Request) -> Response:
        descending = sort_descending(request)
        if isinstance(descending, Response):
            return descending
        try:
            page = uint(request.query_params.get("page", ""), 1)
            per_page = uint(request.query_params.get("per_page", ""), 50)
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
            "Link": link(request, page, per_page, len(users)),
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

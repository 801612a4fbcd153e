"""How the emulated GoTrue refuses: error bodies in the shape the request's
``X-Supabase-Api-Version`` asks for, and the fault dialect (docs/idp/supabase.md#error-bodies)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from accord.emulators.faults import retry_after

API_VERSION = "2024-01-01"

_new_api: ContextVar[bool] = ContextVar("gotrue_new_api", default=False)


def follow_version(request: Request) -> None:
    """Answer errors of the current request in the shape its version header asks for."""
    value = request.headers.get("x-supabase-api-version", "")
    _new_api.set(bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)) and value >= API_VERSION)


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


def unique_violation(constraint: str, detail: str, new_api_message: str) -> JSONResponse:
    """The bare 500 of a unique violation GoTrue does not handle."""
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
        response.headers["Retry-After"] = retry_after(reset_epoch)
        return response

    def rate_limit_headers(self, limit: int, remaining: int, reset_epoch: int) -> dict[str, str]:
        return {}  # GoTrue sends none on success

"""How the emulated Auth0 refuses: the Management API's and OAuth's error bodies, and the dialect
the fault injector speaks (docs/idp/auth0.md#error-bodies, docs/idp/auth0.md#rate-limits)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from accord.emulators.faults import Answer


def api_error(status: int, message: str, error_code: str | None = None, **extra: Any) -> Answer:
    """The Management API's error shape (docs/idp/auth0.md#error-bodies)."""
    body: dict[str, Any] = {"statusCode": status, "error": HTTPStatus(status).phrase}
    body["message"] = message
    if error_code:
        body["errorCode"] = error_code
    return Answer.json(status, **{**body, **extra})


def oauth_error(status: int, error: str, description: str) -> Answer:
    """``/oauth/token`` answers in OAuth's error shape, not the Management API's."""
    return Answer.json(status, error=error, error_description=description)


def query_error(problem: str) -> Answer:
    return api_error(400, f"Query validation error: {problem}.", "invalid_query_string")


def required(body: dict[str, Any], key: str) -> Any:
    if body.get(key) in (None, ""):
        message = f"Payload validation error: 'Missing required property: {key}'."
        raise api_error(400, message, "invalid_body")
    return body[key]


def only(body: dict[str, Any], allowed: frozenset[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        message = f"Payload validation error: 'Additional properties not allowed: {extra[0]}'."
        raise api_error(400, message, "invalid_body")


def check_email(email: Any) -> str:
    if not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
        message = (
            f"Payload validation error: 'Object didn't pass validation for format email: {email}'."
        )
        raise api_error(400, message, "invalid_body")
    return email


class Auth0Dialect:
    """How Auth0 fails on the wire."""

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


def now() -> str:
    """A timestamp as Auth0 writes them: ISO 8601, milliseconds, ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

"""The OpenAPI document: the API's description (authentication, idempotency, errors) and
problem responses under their own media type, ``application/problem+json``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from accord.domain import errors
from accord.entrypoints.api.problems import (
    HTTP_PROBLEMS,
    PROBLEM_MEDIA_TYPE,
    STATUS_BY_CODE,
    public_code,
    status_of_code,
    title_of,
)
from accord.entrypoints.api.security import IDEMPOTENCY_KEY_LIFETIME_HOURS

INTRODUCTION = f"""
accord provisions users and organizations across PostgreSQL and an identity provider.

## Authentication
Send an API token as `Authorization: Bearer acc_…`. `accord tokens create --platform` makes a
token for every organization; `accord tokens create --org ORG_ID` one that may read and change
only that organization (anything else answers 403 `forbidden`). `X-Acting-User` names the
person acting through the token (UTF-8, at most 200 printable characters; control and bidi
characters answer 400 `invalid_acting_user`): the audit trail keeps it as a claim,
`claimed_actor`, next to the token that was authenticated, which is what `actor` and
`created_by` name. `GET /api/admin/audit-events` answers "who did this". Registration, the
password pages, the health endpoints and the metrics need no token.

## Idempotency
Every POST and DELETE accepts an `Idempotency-Key` header (IETF httpapi draft semantics): 1 to
255 visible ASCII characters without `"`, a UUID is recommended. Creating and deprovisioning
users and registering are replayed: the same key with the same body returns the stored status
and body (successes and errors alike) and has its effects once; the same key with another body
answers 422 `idempotency_key_reused`; while the first request still runs, 409
`operation_in_progress`. Keys are scoped to the caller (the API token; public registrations
share one scope: use a UUID there) and kept for at least {IDEMPOTENCY_KEY_LIFETIME_HOURS} hours;
after that a key may be forgotten and start a new request. Creating an organization is not
replayed: a name whose slug is taken gets the next free suffix (`acme-2`); the password
endpoints are safe to repeat.

## Operations that continue in the background
When the identity provider is unavailable, a provisioning request answers **202** with
`Location: /api/operations/{{id}}` and `Retry-After`; the operation goes on in the background.
Poll its URL, or retry with the same `Idempotency-Key`.

## Errors
Errors are RFC 9457 problem documents (`application/problem+json`) with `type`, `title`,
`status`, `detail`, a stable `code`, and the `request_id` (also in the `X-Request-ID` response
header). Request bodies are limited in size (413); unknown fields and over-long values are
refused (422 `invalid_input`, naming the field).
"""


def _meaning(code: str) -> str:
    """A code's title, and the code a client reads instead when it is not this one."""
    if code == errors.OperationPending.code:
        why = errors.ProviderUnavailable.code
        return f"{title_of(code)} The body's `code` is why it waits, e.g. `{why}`."
    answered = public_code(code) if code not in HTTP_PROBLEMS else code
    if answered == code:
        return title_of(code)
    return f"{title_of(code)} A problem answers it as `{answered}`."


def error_catalogue() -> str:
    """A markdown table of every problem and error code, its status and its meaning."""
    codes = sorted({*HTTP_PROBLEMS, *STATUS_BY_CODE, *errors.error_codes()})
    rows = [f"| `{code}` | {status_of_code(code)} | {_meaning(code)} |" for code in codes]
    return "\n".join(["| code | status | meaning |", "|---|---|---|", *rows])


def _problem_media_types(schema: dict[str, Any]) -> None:
    """Move every response whose schema is a Problem to application/problem+json."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                body = content.get("application/json", {})
                if body.get("schema", {}).get("$ref", "").endswith("/Problem"):
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` produce accord's document (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=INTRODUCTION + "\n" + error_catalogue(),
                routes=app.routes,
            )
            _problem_media_types(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

"""Errors as RFC 9457 problem documents (``application/problem+json``), mapped in one place.

Errors map by class, through one table keyed by code: ``STATUS_BY_CODE``. An error's row is
its own code's, else its nearest ancestor's along the class's MRO, and the row gives both the
status and the ``code`` the client reads. So a subclass without a row of its own answers as its
parent: ``OutcomeUnknown`` (``idp_outcome_unknown``) is 503 ``idp_unavailable``, as a transient
failure of any other kind. Server-side failures (5xx) carry only their generic title: no
traceback, database message or vendor text reaches a client. ``OperationPending`` is not a
failure: it answers 202 with the operation's URL, and its body's ``code`` says why it waits
(its ``reason_code``, mapped the same way: ``idp_unavailable``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from accord.domain import errors
from accord.entrypoints.api.schemas import PendingOperation, Problem

PROBLEM_MEDIA_TYPE = "application/problem+json"

STATUS_BY_CODE: dict[str, int] = {
    "accord_error": 500,
    "operation_pending": 202,  # answered by pending_response, with its reason's code
    "invalid_input": 422,
    "email_invalid": 422,
    "password_rejected": 422,
    "password_too_weak": 400,
    "idempotency_key_reused": 422,
    "scim_user_name_taken": 409,
    "scim_group_name_taken": 409,
    "scim_group_not_found": 404,
    "idp_rejected": 422,
    "token_invalid": 400,
    "email_confusable": 400,
    "invalid_acting_user": 400,
    "unauthenticated": 401,
    "invalid_credentials": 401,
    "forbidden": 403,
    "password_change_required": 403,
    "user_not_found": 404,
    "organization_not_found": 404,
    "operation_not_found": 404,
    "webhook_not_found": 404,
    "webhook_target_refused": 422,
    "api_token_not_found": 404,
    "too_many_attempts": 429,
    "too_many_requests": 429,
    "email_exists": 409,
    "identity_exists": 409,
    "organization_exists": 409,
    "organization_full": 409,
    "operation_in_progress": 409,
    "idp_conflict": 409,
    "reconcile_running": 409,
    "user_not_linked": 409,
    "hook_failed": 500,
    "configuration_invalid": 500,
    "constraint_violated": 500,
    "idp_error": 502,
    "idp_not_found": 502,
    "idp_misconfigured": 502,
    "idp_unavailable": 503,  # and idp_outcome_unknown, which has no row of its own
    "retry_budget_exhausted": 503,
    "mail_unavailable": 503,
    "database_unavailable": 503,
    "database_conflict": 503,
    "invitation_not_found": 404,
    "invitation_revoked": 410,
    "invitation_expired": 410,
    "already_member": 409,
    "last_admin": 409,
    "owner_membership": 409,
    "membership_not_found": 404,
    "limit_below_usage": 409,
    "mail_not_found": 404,
    "user_suspended": 403,
    "user_deprovisioned": 409,
    "cursor_expired": 410,
}

# Problems the HTTP layer itself produces (not AccordErrors): code → (status, title).
HTTP_PROBLEMS: dict[str, tuple[int, str]] = {
    "not_found": (404, "There is nothing at this URL."),
    "method_not_allowed": (405, "This URL does not accept that method."),
    "payload_too_large": (413, "The request body is larger than the server accepts."),
    "internal_error": (500, "An unexpected error occurred; it has been logged."),
}

AUTH_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="accord"'}


ErrorOrClass = errors.AccordError | type[errors.AccordError]


def _class_of(error: ErrorOrClass | str) -> type[errors.AccordError]:
    if isinstance(error, str):
        return errors.error_codes().get(error, errors.AccordError)
    return error if isinstance(error, type) else type(error)


def public_code(error: ErrorOrClass | str) -> str:
    """The code a client reads for ``error`` (or a catalogued code): its row's in STATUS_BY_CODE."""
    for cls in _class_of(error).__mro__:
        code = getattr(cls, "code", None)
        if code in STATUS_BY_CODE:
            return code
    return errors.AccordError.code


def status_of(error: ErrorOrClass) -> int:
    """The HTTP status for ``error``: its code's, else its nearest ancestor's."""
    return STATUS_BY_CODE[public_code(error)]


def title_of(code: str) -> str:
    """The generic, fixed title of a problem code."""
    if code in HTTP_PROBLEMS:
        return HTTP_PROBLEMS[code][1]
    cls = errors.error_codes().get(code, errors.AccordError)
    return (cls.__doc__ or code).strip().splitlines()[0]


def status_of_code(code: str) -> int:
    """The HTTP status of a problem code (an unknown one is a 500)."""
    return HTTP_PROBLEMS[code][0] if code in HTTP_PROBLEMS else status_of(_class_of(code))


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    field_errors: list[dict[str, str]] | None = None,
) -> JSONResponse:
    """A problem+json response, carrying the request id for support."""
    body = Problem(
        type=f"urn:accord:problem:{code}",
        title=title_of(code),
        status=status,
        detail=detail or title_of(code),
        code=code,
        request_id=getattr(request.state, "request_id", None),
        errors=field_errors,
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _retry_after(seconds: float | None) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds or 1)))}


def pending_response(request: Request, pending: errors.OperationPending) -> JSONResponse:
    """202: the operation goes on in the background; poll its URL or retry with the same key."""
    request.state.operation_id = pending.operation_id
    retry = _retry_after(pending.retry_after)
    body = PendingOperation(
        operation_id=pending.operation_id,
        state="open",
        code=public_code(pending.reason_code),
        detail=pending.message,
        retry_after=int(retry["Retry-After"]),
    )
    headers = {"Location": f"/api/operations/{pending.operation_id}", **retry}
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers=headers)


async def accord_error(request: Request, exc: Exception) -> JSONResponse:
    """The one mapping from accord's errors to HTTP answers."""
    assert isinstance(exc, errors.AccordError)
    if isinstance(exc, errors.OperationPending):
        return pending_response(request, exc)
    status = status_of(exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers.update(AUTH_CHALLENGE)
    if status in (429, 503) or exc.code == "operation_in_progress":
        headers.update(_retry_after(getattr(exc, "retry_after", None)))
    detail = exc.message if status < 500 else None  # 5xx: the generic title only
    return problem_response(request, status, public_code(exc), detail, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "request"


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 ``invalid_input`` naming each offending field (never echoing its value)."""
    assert isinstance(exc, RequestValidationError)
    found = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()]
    detail = "The request is not valid: " + "; ".join(
        f"{e['field']}: {e['message']}" for e in found[:5]
    )
    return problem_response(request, 422, "invalid_input", detail, field_errors=found)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Routing errors (404, 405, ...) in the same problem format."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:  # a body that is not even text: as invalid as malformed JSON
        detail = "The request body could not be read: send UTF-8 JSON."
        found = [{"field": "body", "message": detail}]
        return problem_response(request, 422, "invalid_input", detail, field_errors=found)
    code = {404: "not_found", 405: "method_not_allowed"}.get(
        exc.status_code, f"http_{exc.status_code}"
    )
    return problem_response(request, exc.status_code, code, headers=exc.headers)


def internal_error(request: Request) -> JSONResponse:
    """500 ``internal_error``: the details are in the server's log, never in the response."""
    return problem_response(request, 500, "internal_error")


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(errors.AccordError, accord_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)


# -- OpenAPI: which problems a route documents -----------------------------------------------------

EVERY_ROUTE = ("payload_too_large", "internal_error")
WITH_BODY = ("invalid_input",)
AUTHENTICATED = ("unauthenticated", "forbidden", "invalid_acting_user")
DATABASE = ("database_unavailable", "database_conflict")
OPERATION = (
    "idempotency_key_reused",
    "operation_in_progress",
    "idp_unavailable",
    "idp_rejected",
    "idp_conflict",
    "idp_not_found",
    "idp_misconfigured",
    "idp_error",
    "retry_budget_exhausted",
    "hook_failed",
)


def _headers_for(status: int) -> dict[str, Any]:
    if status == 401:
        return {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}
    if status in (409, 429, 503):
        wait = "Seconds to wait (429, 503, and 409 `operation_in_progress`)."
        return {"Retry-After": {"description": wait, "schema": {"type": "integer"}}}
    return {}


def documented(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the problem codes a route can answer with, by status."""
    by_status: dict[int, list[str]] = defaultdict(list)
    for code in dict.fromkeys([*codes, *EVERY_ROUTE]):
        by_status[status_of_code(code)].append(code)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, found in sorted(by_status.items()):
        lines = "\n".join(f"- `{code}`: {title_of(code)}" for code in found)
        responses[status] = {"model": Problem, "description": f"A problem:\n{lines}"}
        if headers := _headers_for(status):
            responses[status]["headers"] = headers
    return responses


PENDING_RESPONSE: dict[int | str, dict[str, Any]] = {
    202: {
        "model": PendingOperation,
        "description": (
            "The identity provider is unavailable; the operation continues in the background. "
            "Poll `Location`, or retry with the same Idempotency-Key after `Retry-After`."
        ),
        "headers": {
            "Location": {
                "description": "The operation's URL: `/api/operations/{id}`.",
                "schema": {"type": "string"},
            },
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}},
        },
    }
}

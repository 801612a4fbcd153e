"""What every SCIM route shares: the answer and error format, the exception handlers, and the
request pieces (the SCIM client behind the bearer, the body, listing parameters)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from scim2_models import (
    Context,
    Error,
    ListResponse,
    ResponseParameters,
    SCIMException,
    SearchRequest,
)
from starlette.exceptions import HTTPException

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.callers import Caller
from accord.entrypoints.api.problems import status_of
from accord.entrypoints.scim.resources import MAX_RESULTS
from accord.services import scim_tokens

SCIM_JSON = "application/scim+json"
UNIQUENESS = (
    errors.ScimUserNameTaken,
    errors.ScimGroupNameTaken,
    errors.EmailAlreadyExists,
    errors.IdentityExists,
)


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=SCIM_JSON, headers=headers)


def error_answer(
    status: int,
    detail: str | None,
    scim_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Error(status=status, scim_type=scim_type, detail=detail).model_dump()
    return answer(body, status, headers)


# -- errors --------------------------------------------------------------------------------------


async def accord_error(request: Request, exc: Exception) -> JSONResponse:
    """accord's errors as SCIM Errors: the IdP reads ``status`` and ``scimType``."""
    assert isinstance(exc, errors.AccordError)
    if isinstance(exc, errors.Unauthenticated):
        return error_answer(
            401, exc.message, headers={"WWW-Authenticate": 'Bearer realm="accord-scim"'}
        )
    if isinstance(exc, UNIQUENESS):
        return error_answer(409, exc.message, "uniqueness")
    if isinstance(exc, errors.OperationPending | errors.OperationInProgress):
        # SCIM has no 202: the IdP retries the same request, which rejoins the operation.
        retry = str(max(1, int(getattr(exc, "retry_after", 1) or 1)))
        detail = "The change is still being made; retry the same request shortly."
        return error_answer(503, detail, headers={"Retry-After": retry})
    if isinstance(exc, errors.InvalidInput):
        return error_answer(400, exc.message, "invalidValue")
    status = status_of(exc)
    return error_answer(status, exc.message if status < 500 else "The request failed; retry later.")


async def scim_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SCIMException)
    error = exc.toerror_answer()
    return answer(error.model_dump(), int(error.status or 400))


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError | RequestValidationError)
    found = Error.from_validation_errors(exc.errors())  # type: ignore[arg-type]
    first = found[0] if found else Error(status=400, scim_type="invalidSyntax")
    return answer(first.model_dump(), 400)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = {404: "There is nothing at this URL.", 405: "This URL does not accept that method."}
    return error_answer(exc.status_code, detail.get(exc.status_code, str(exc.detail)))


# -- request pieces ------------------------------------------------------------------------------


def base_url(request: Request) -> str:
    """The SCIM base URL as the client reached it (for ``meta.location``)."""
    root = request.scope.get("root_path", "")
    return f"{request.url.scheme}://{request.url.netloc}{root}".rstrip("/")


async def caller_of(request: Request) -> Caller:
    """The organization's SCIM client that the bearer token stands for."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthenticated("Send the organization's SCIM token as a Bearer token.")
    return await scim_tokens.authenticate_scim(accord_of(request), token)


def accord_of(request: Request) -> Accord:
    accord: Accord = request.app.state.parent.state.accord
    return accord


async def body_of(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise errors.InvalidInput("The request body is not JSON.") from None
    if not isinstance(body, dict):
        raise errors.InvalidInput("The request body must be a JSON object.")
    return body


def _listed(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def response_parameters(request: Request) -> ResponseParameters[Any]:
    query = request.query_params
    return ResponseParameters(
        attributes=_listed(query.get("attributes")),
        excluded_attributes=_listed(query.get("excludedAttributes")),
    )


def page_of(
    listing: type[ListResponse[Any]], matched: list[Any], search: SearchRequest[Any]
) -> JSONResponse:
    """The page of ``matched`` resources that ``search`` asks for (``startIndex`` from 1,
    ``count`` capped at ``resources.MAX_RESULTS``), with its attributes chosen."""
    start = max(search.start_index or 1, 1)
    limit = MAX_RESULTS if search.count is None else min(search.count, MAX_RESULTS)
    page = matched[start - 1 : start - 1 + max(limit, 0)]
    parameters = ResponseParameters[Any](
        attributes=search.attributes, excluded_attributes=search.excluded_attributes
    )
    found = listing(
        total_results=len(matched), start_index=start, items_per_page=len(page), resources=page
    )
    body = found.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=parameters)
    body.setdefault("Resources", [])
    return answer(body)


def search_request_of(request: Request) -> SearchRequest[Any]:
    """A listing's query parameters (``filter``, ``startIndex``, ``count``, attributes)."""
    query = dict(request.query_params)
    return SearchRequest[Any].model_validate(
        {
            k: v
            for k, v in query.items()
            if k in ("filter", "startIndex", "count", "attributes", "excludedAttributes")
        }
        | {
            "attributes": _listed(query.get("attributes")),
            "excludedAttributes": _listed(query.get("excludedAttributes")),
        },
        scim_ctx=Context.SEARCH_REQUEST,
    )

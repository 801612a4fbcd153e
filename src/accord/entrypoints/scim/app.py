"""SCIM 2.0 (RFC 7644) under ``/scim/v2``: a sub-application with its own error format.

Thin routes over ``services/scim.py``: the bearer is an organization's SCIM token
(``services/scim_tokens.py``), bodies and answers are scim2-models' models, and every error,
whatever raised it, is a SCIM Error (``urn:ietf:params:scim:api:messages:2.0:Error``) with the
``scimType`` an IdP acts on. The sub-application is mounted by ``entrypoints/api/app.py`` and is
not part of the OpenAPI document: ``/scim/v2/Schemas`` describes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from scim2_models import (
    Context,
    ListResponse,
    PatchOp,
    SCIMException,
    ScimFilter,
    SearchRequest,
    User,
)
from scim2_models.path.expressions import CompareOperator, Comparison
from starlette.exceptions import HTTPException

from accord.domain import errors
from accord.entrypoints.scim import resources
from accord.entrypoints.scim.common import (
    accord_error,
    accord_of,
    answer,
    base_url,
    body_of,
    caller_of,
    error_answer,
    http_error,
    page_of,
    response_parameters,
    scim_error,
    search_request_of,
    validation_error,
)
from accord.entrypoints.scim.groups import add_group_routes
from accord.services import scim


def _user_out(
    found: scim.ScimUser, request: Request, ctx: Context, status: int = 200
) -> JSONResponse:
    resource = resources.resource_of(found, base_url(request))
    body = resource.model_dump(scim_ctx=ctx, response_parameters=response_parameters(request))
    headers = {"Location": str(resource.meta.location)} if resource.meta else None
    return answer(body, status, headers)


# -- discovery -----------------------------------------------------------------------------------


def _discovery(app: FastAPI) -> None:
    @app.get("/ServiceProviderConfig")
    async def service_provider_config(request: Request) -> JSONResponse:
        await caller_of(request)
        return answer(resources.service_provider_config(base_url(request)).model_dump())

    @app.get("/ResourceTypes")
    async def resource_types(request: Request) -> JSONResponse:
        await caller_of(request)
        found = resources.resource_types(base_url(request))
        return answer(_list(found, len(found), 1))

    @app.get("/ResourceTypes/{name}")
    async def resource_type(request: Request, name: str) -> JSONResponse:
        await caller_of(request)
        for found in resources.resource_types(base_url(request)):
            if found.id == name:
                return answer(found.model_dump())
        return error_answer(404, f"No resource type {name!r}.")

    @app.get("/Schemas")
    async def schemas(request: Request) -> JSONResponse:
        await caller_of(request)
        found = resources.schemas(base_url(request))
        return answer(_list(found, len(found), 1))

    @app.get("/Schemas/{schema_id}")
    async def schema(request: Request, schema_id: str) -> JSONResponse:
        await caller_of(request)
        for found in resources.schemas(base_url(request)):
            if found.id == schema_id:
                return answer(found.model_dump())
        return error_answer(404, f"No schema {schema_id!r}.")

    @app.post("/.search")
    async def search_everything(request: Request) -> JSONResponse:
        await caller_of(request)
        detail = "Search /Users/.search or /Groups/.search instead: one resource type at a time."
        return error_answer(501, detail)


def _list(
    items: list[Any], total: int, start: int, dump: Callable[[Any], Any] | None = None
) -> Any:
    dumped = [dump(i) if dump else i.model_dump() for i in items]
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(dumped),
        "Resources": dumped,
    }


# -- users ---------------------------------------------------------------------------------------


async def _search(request: Request, search: SearchRequest[Any]) -> JSONResponse:
    caller = await caller_of(request)
    matcher = ScimFilter[User](search.filter) if search.filter else None
    url = base_url(request)
    user_name = _user_name_lookup(matcher)
    if user_name is not None:  # the IdPs' lookup before a create: one indexed read
        everyone = await scim.find_scim_users(accord_of(request), user_name, caller=caller)
    else:
        everyone = await scim.list_scim_users(accord_of(request), caller=caller)
    matched = [
        resource
        for resource in (resources.resource_of(found, url) for found in everyone)
        if matcher is None or matcher.match(resource)
    ]
    return page_of(ListResponse[User], matched, search)


def _user_name_lookup(matcher: ScimFilter[User] | None) -> str | None:
    """The userName a filter ``userName eq "…"`` (and nothing else) looks for."""
    node = matcher.ast if matcher is not None else None
    if not isinstance(node, Comparison) or node.op != CompareOperator.eq:
        return None
    path = node.attr_path
    if (
        path.attr.lower() != "username"
        or path.sub_attr
        or path.uri not in (None, str(User.__schema__))
    ):
        return None
    return node.value if isinstance(node.value, str) else None


def _users(app: FastAPI) -> None:
    @app.get("/Users")
    async def list_users(request: Request) -> JSONResponse:
        return await _search(request, search_request_of(request))

    @app.post("/Users/.search")
    async def search_users(request: Request) -> JSONResponse:
        body = await body_of(request)
        search = SearchRequest[Any].model_validate(body, scim_ctx=Context.SEARCH_REQUEST)
        return await _search(request, search)

    @app.post("/Users")
    async def create_user(request: Request) -> JSONResponse:
        caller = await caller_of(request)
        resource = User.model_validate(
            await body_of(request),
            scim_ctx=Context.RESOURCE_CREATION_REQUEST,
            scim_policy=resources.POLICY,
        )
        found, _ = await scim.create_scim_user(
            accord_of(request), resources.state_of(resource, active=True), caller=caller
        )
        return _user_out(found, request, Context.RESOURCE_CREATION_RESPONSE, 201)

    @app.get("/Users/{user_id}")
    async def get_user(request: Request, user_id: str) -> JSONResponse:
        caller = await caller_of(request)
        found = await scim.get_scim_user(accord_of(request), _id(user_id), caller=caller)
        return _user_out(found, request, Context.RESOURCE_QUERY_RESPONSE)

    @app.put("/Users/{user_id}")
    async def replace_user(request: Request, user_id: str) -> JSONResponse:
        caller = await caller_of(request)
        accord = accord_of(request)
        current = await scim.get_scim_user(accord, _id(user_id), caller=caller)
        resource = User.model_validate(
            await body_of(request),
            scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST,
            scim_policy=resources.POLICY,
        )
        state = resources.state_of(resource, active=current.active)
        found = await scim.replace_scim_user(accord, current.user.id, state, caller=caller)
        return _user_out(found, request, Context.RESOURCE_REPLACEMENT_RESPONSE)

    @app.patch("/Users/{user_id}")
    async def patch_user(request: Request, user_id: str) -> JSONResponse:
        caller = await caller_of(request)
        accord = accord_of(request)
        current = await scim.get_scim_user(accord, _id(user_id), caller=caller)
        patch = PatchOp[User].model_validate(
            await body_of(request),
            scim_ctx=Context.RESOURCE_PATCH_REQUEST,
            scim_policy=resources.POLICY,
        )
        resource = resources.resource_of(current, base_url(request))
        patch.patch(resource, scim_policy=resources.POLICY)
        state = resources.state_of(resource, active=current.active)
        found = await scim.replace_scim_user(accord, current.user.id, state, caller=caller)
        return _user_out(found, request, Context.RESOURCE_PATCH_RESPONSE)

    @app.delete("/Users/{user_id}")
    async def delete_user(request: Request, user_id: str) -> Response:
        caller = await caller_of(request)
        await scim.delete_scim_user(accord_of(request), _id(user_id), caller=caller)
        return Response(status_code=204)


def _id(user_id: str) -> str:
    """A SCIM id that is not one of accord's is a user that does not exist (404, not 400)."""
    try:
        return str(UUID(user_id))
    except ValueError:
        raise errors.UserNotFound(f"No user {user_id}.") from None


def create_scim_app(parent: FastAPI) -> FastAPI:
    """The SCIM sub-application; it serves the Accord of ``parent``."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.parent = parent
    app.add_exception_handler(errors.AccordError, accord_error)
    app.add_exception_handler(SCIMException, scim_error)
    app.add_exception_handler(ValidationError, validation_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    _discovery(app)
    _users(app)
    add_group_routes(app)
    return app

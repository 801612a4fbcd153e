"""``/scim/v2/Groups``: thin routes over ``services/scim_groups.py``, in the style of the Users
routes of ``app.py``, sharing their request pieces and error format (``common.py``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from scim2_models import (
    Context,
    Group,
    ListResponse,
    PatchOp,
    ScimFilter,
    SearchRequest,
)
from scim2_models.path.expressions import CompareOperator, Comparison

from accord.domain import errors
from accord.entrypoints.scim import resources
from accord.entrypoints.scim.common import (
    accord_of,
    answer,
    base_url,
    body_of,
    caller_of,
    page_of,
    response_parameters,
    search_request_of,
)
from accord.services import scim_groups


def _group_out(
    found: scim_groups.ScimGroup, request: Request, ctx: Context, status: int = 200
) -> JSONResponse:
    resource = resources.group_of(found, base_url(request))
    body = resource.model_dump(scim_ctx=ctx, response_parameters=response_parameters(request))
    headers = {"Location": str(resource.meta.location)} if resource.meta else None
    return answer(body, status, headers)


def _display_name_lookup(matcher: ScimFilter[Group] | None) -> str | None:
    """The displayName a filter ``displayName eq "…"`` (and nothing else) looks for."""
    node = matcher.ast if matcher is not None else None
    if not isinstance(node, Comparison) or node.op != CompareOperator.eq:
        return None
    path = node.attr_path
    if (
        path.attr.lower() != "displayname"
        or path.sub_attr
        or path.uri not in (None, str(Group.__schema__))
    ):
        return None
    return node.value if isinstance(node.value, str) else None


async def _search(request: Request, search: SearchRequest[Any]) -> JSONResponse:
    caller = await caller_of(request)
    matcher = ScimFilter[Group](search.filter) if search.filter else None
    url = base_url(request)
    found = await scim_groups.list_scim_groups(
        accord_of(request), caller=caller, display_name=_display_name_lookup(matcher)
    )
    matched = [
        resource
        for resource in (resources.group_of(group, url) for group in found)
        if matcher is None or matcher.match(resource)
    ]
    return page_of(ListResponse[Group], matched, search)


def _parsed(body: dict[str, Any], ctx: Context) -> Group:
    return Group.model_validate(body, scim_ctx=ctx, scim_policy=resources.POLICY)


def add_group_routes(app: FastAPI) -> None:
    """The Groups endpoints of the SCIM sub-application."""

    @app.get("/Groups")
    async def list_groups(request: Request) -> JSONResponse:
        return await _search(request, search_request_of(request))

    @app.post("/Groups/.search")
    async def search_groups(request: Request) -> JSONResponse:
        body = await body_of(request)
        search = SearchRequest[Any].model_validate(body, scim_ctx=Context.SEARCH_REQUEST)
        return await _search(request, search)

    @app.post("/Groups")
    async def create_group(request: Request) -> JSONResponse:
        caller = await caller_of(request)
        resource = _parsed(await body_of(request), Context.RESOURCE_CREATION_REQUEST)
        found = await scim_groups.create_scim_group(
            accord_of(request), resources.group_state_of(resource), caller=caller
        )
        return _group_out(found, request, Context.RESOURCE_CREATION_RESPONSE, 201)

    @app.get("/Groups/{group_id}")
    async def get_group(request: Request, group_id: str) -> JSONResponse:
        caller = await caller_of(request)
        found = await scim_groups.get_scim_group(accord_of(request), _id(group_id), caller=caller)
        return _group_out(found, request, Context.RESOURCE_QUERY_RESPONSE)

    @app.put("/Groups/{group_id}")
    async def replace_group(request: Request, group_id: str) -> JSONResponse:
        caller = await caller_of(request)
        accord = accord_of(request)
        current = await scim_groups.get_scim_group(accord, _id(group_id), caller=caller)
        resource = _parsed(await body_of(request), Context.RESOURCE_REPLACEMENT_REQUEST)
        state = resources.group_state_of(resource)
        found = await scim_groups.replace_scim_group(
            accord, current.record.id, state, caller=caller
        )
        return _group_out(found, request, Context.RESOURCE_REPLACEMENT_RESPONSE)

    @app.patch("/Groups/{group_id}")
    async def patch_group(request: Request, group_id: str) -> Response:
        caller = await caller_of(request)
        accord = accord_of(request)
        current = await scim_groups.get_scim_group(accord, _id(group_id), caller=caller)
        patch = PatchOp[Group].model_validate(
            await body_of(request),
            scim_ctx=Context.RESOURCE_PATCH_REQUEST,
            scim_policy=resources.POLICY,
        )
        url = base_url(request)

        def patched(group: scim_groups.ScimGroup) -> scim_groups.ScimGroupState:
            resource = resources.group_of(group, url)
            patch.patch(resource, scim_policy=resources.POLICY)
            return resources.group_state_of(resource)

        found = await scim_groups.update_scim_group(
            accord, current.record.id, patched, caller=caller
        )
        return _group_out(found, request, Context.RESOURCE_PATCH_RESPONSE)

    @app.delete("/Groups/{group_id}")
    async def delete_group(request: Request, group_id: str) -> Response:
        caller = await caller_of(request)
        await scim_groups.delete_scim_group(accord_of(request), _id(group_id), caller=caller)
        return Response(status_code=204)


def _id(group_id: str) -> str:
    """A SCIM id that is not one of accord's is a group that does not exist (404, not 400)."""
    try:
        return str(UUID(group_id))
    except ValueError:
        raise errors.ScimGroupNotFound(f"No group {group_id}.") from None

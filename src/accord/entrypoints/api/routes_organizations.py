"""Organizations: create and delete (platform token), list and read (an organization token: its
own)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request

from accord.domain.model import OperationKind
from accord.entrypoints.api.problems import (
    AUTHENTICATED,
    DATABASE,
    OPERATION,
    PENDING_RESPONSE,
    WITH_BODY,
    documented,
)
from accord.entrypoints.api.routing import run_operation
from accord.entrypoints.api.schemas import (
    NewOrganization,
    Organization,
    OrganizationDeleted,
    OrganizationList,
    OrganizationPatch,
)
from accord.entrypoints.api.security import AccordDep, AnyCaller, IdempotencyKey, PlatformCaller
from accord.services import offboarding, organizations, reads

router = APIRouter(tags=["organizations"])


@router.post(
    "/api/admin/organizations",
    status_code=201,
    response_model=Organization,
    responses=documented(*WITH_BODY, *AUTHENTICATED, *DATABASE, "organization_exists"),
    summary="Create a team organization (platform token)",
    description=(
        "The slug derives from `name` and is unique. **Idempotency**: this request is "
        "conflict-safe rather than replayed. The `Idempotency-Key` header is accepted and "
        "checked, but no response is stored: a retry of a request that succeeded answers 409 "
        "`organization_exists` and creates nothing; read the organization with "
        "`GET /api/admin/organizations`."
    ),
)
async def create_organization(
    body: NewOrganization, accord: AccordDep, caller: PlatformCaller, key: IdempotencyKey
) -> dict[str, Any]:
    """Create a team organization."""
    request = organizations.NewOrganization(
        name=body.name,
        display_name=body.display_name,
        plan_type=body.plan_type,
        max_users=body.max_users,
        status=body.status,
        settings=dict(body.settings),
    )
    return await organizations.create_organization(accord, request, caller=caller)


@router.get(
    "/api/admin/organizations",
    response_model=OrganizationList,
    responses=documented(*AUTHENTICATED, *DATABASE),
    summary="List organizations",
    description="Ordered by slug. An organization token sees only its own organization.",
)
async def list_organizations(accord: AccordDep, caller: AnyCaller) -> dict[str, Any]:
    """The organizations the caller may see."""
    return {"items": await reads.list_organizations(accord, caller=caller)}


@router.get(
    "/api/admin/organizations/{organization_id}",
    response_model=Organization,
    responses=documented("invalid_input", "organization_not_found", *AUTHENTICATED, *DATABASE),
    summary="Read an organization",
)
async def get_organization(
    organization_id: UUID, accord: AccordDep, caller: AnyCaller
) -> dict[str, Any]:
    """One organization, with its member count."""
    return await reads.get_organization(accord, organization_id, caller=caller)


@router.delete(
    "/api/admin/organizations/{organization_id}",
    response_model=OrganizationDeleted,
    responses={
        **PENDING_RESPONSE,
        **documented(
            "invalid_input", "organization_not_found", *AUTHENTICATED, *DATABASE, *OPERATION
        ),
    },
    summary="Offboard an organization (platform token)",
    description=(
        "One durable operation: the organization's API tokens and pending invitations are "
        "revoked, its memberships removed, and the members it leaves with no organization "
        "deprovisioned (their identity deleted where accord created it), unless "
        "`keep_users=true`. Access ends at once; the answer is the report, also audited as "
        "`organization.offboarded`. With the identity provider unreachable: 202 and the "
        "operation's URL; a retry with the same `Idempotency-Key` replays the report."
    ),
)
async def delete_organization(
    request: Request,
    organization_id: UUID,
    accord: AccordDep,
    caller: PlatformCaller,
    key: IdempotencyKey,
    keep_users: Annotated[
        bool, Query(description="Keep the members it leaves without organization.")
    ] = False,
) -> dict[str, Any]:
    """Offboard an organization."""
    return await run_operation(
        request,
        OperationKind.DELETE_ORGANIZATION,
        lambda: offboarding.delete_organization(
            accord, organization_id, caller=caller, keep_users=keep_users, idempotency_key=key
        ),
    )


@router.patch(
    "/api/admin/organizations/{organization_id}",
    response_model=Organization,
    responses=documented(
        *WITH_BODY,
        *AUTHENTICATED,
        *DATABASE,
        "organization_not_found",
        "limit_below_usage",
    ),
    summary="Change an organization's display name, member limit or status",
    description=(
        "Fields left out stay as they are; each change grows `version` by one and is audited "
        "`organization.updated` (a request that changes nothing changes nothing). A platform "
        "token may change every field; the organization's own token only `display_name` "
        "(403 `forbidden` for `max_users` or `status`); another organization answers 404 "
        "`organization_not_found`. `max_users` below the seats taken (members, and creations "
        "in progress) answers 409 `limit_below_usage`."
    ),
)
async def update_organization(
    organization_id: UUID, body: OrganizationPatch, accord: AccordDep, caller: AnyCaller
) -> dict[str, Any]:
    """Change an organization."""
    change = organizations.OrganizationUpdate(
        display_name=body.display_name, max_users=body.max_users, status=body.status
    )
    return await organizations.update_organization(accord, organization_id, change, caller=caller)

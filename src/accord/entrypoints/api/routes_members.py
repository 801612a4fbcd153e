"""Memberships: list an organization's members, add or change one (PUT), remove one."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response

from accord.entrypoints.api.problems import AUTHENTICATED, DATABASE, WITH_BODY, documented
from accord.entrypoints.api.schemas import Member, MemberChange, MemberPage, MemberRemoved
from accord.entrypoints.api.security import AccordDep, AnyCaller, IdempotencyKey
from accord.services import members, reads

router = APIRouter(tags=["members"])

MEMBER_URL = "/api/admin/organizations/{org_id}/members/{user_id}"


@router.get(
    "/api/admin/organizations/{org_id}/members",
    response_model=MemberPage,
    responses=documented("invalid_input", "organization_not_found", *AUTHENTICATED, *DATABASE),
    summary="List an organization's members, a page at a time",
    description="Ordered by user id. An organization token sees only its own organization's "
    "members; another organization answers 404 `organization_not_found`.",
)
async def list_members(
    org_id: UUID,
    accord: AccordDep,
    caller: AnyCaller,
    cursor: Annotated[
        str | None,
        Query(description="`next_cursor` of the previous page.", pattern=r"^[A-Za-z0-9_\-]{1,64}$"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=reads.MAX_PAGE_SIZE)] = 50,
) -> dict[str, Any]:
    """A page of members and the cursor of the next."""
    return await members.list_members(accord, org_id, caller=caller, cursor=cursor, limit=limit)


@router.put(
    MEMBER_URL,
    response_model=Member,
    responses={
        201: {"model": Member, "description": "The user was added to the organization."},
        **documented(
            *WITH_BODY,
            *AUTHENTICATED,
            *DATABASE,
            "organization_not_found",
            "user_not_found",
            "organization_full",
            "last_admin",
            "owner_membership",
        ),
    },
    summary="Add a member, or set a member's role and permissions",
    description=(
        "**201** when the user was added (platform token only: an organization token answers "
        "404 `user_not_found` for a user who is not already its member); **200** when they "
        "were a member: the role and permissions are replaced (the same request again changes "
        "nothing). Adding takes a seat: 409 `organization_full` at `max_users`. A team "
        "organization keeps at least one `org_admin` (409 `last_admin` for demoting the last); "
        "a personal organization's owner stays its `org_admin` (409 `owner_membership`). One "
        "transaction; the identity provider is not called. Audited `membership.added` or "
        "`membership.updated`."
    ),
)
async def put_member(
    org_id: UUID,
    user_id: UUID,
    body: MemberChange,
    response: Response,
    accord: AccordDep,
    caller: AnyCaller,
) -> dict[str, Any]:
    """Add or change a membership."""
    member, added = await members.put_member(
        accord, org_id, user_id, role=body.role, permissions=body.permissions, caller=caller
    )
    response.status_code = 201 if added else 200
    return member


@router.delete(
    MEMBER_URL,
    response_model=MemberRemoved,
    responses=documented(
        "invalid_input",
        *AUTHENTICATED,
        *DATABASE,
        "organization_not_found",
        "membership_not_found",
        "last_admin",
        "owner_membership",
    ),
    summary="Remove a member from an organization",
    description=(
        "The user keeps their account and their other memberships; one left with none is "
        "kept, or deprovisioned when the server runs with "
        "`ACCORD_LAST_MEMBERSHIP_REMOVED=deprovision` (`deprovision_operation_id`). 404 "
        "`membership_not_found` if the user is not a member (so a repeated DELETE answers "
        "404); 409 `last_admin` for a team's last `org_admin`, 409 `owner_membership` for a "
        "personal organization's owner. Audited `membership.removed`. The "
        "`Idempotency-Key` header is accepted and checked, but no response is stored: a retry "
        "of a removal that succeeded answers 404 `membership_not_found` and removes nothing."
    ),
)
async def remove_member(
    org_id: UUID, user_id: UUID, accord: AccordDep, caller: AnyCaller, key: IdempotencyKey
) -> dict[str, Any]:
    """Remove a membership."""
    return await members.remove_member(accord, org_id, user_id, caller=caller)

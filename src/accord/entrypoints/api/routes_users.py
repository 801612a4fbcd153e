"""Users: create (platform, or the organization's own token), list, read, deprovision."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request

from accord.bootstrap import Accord
from accord.domain.callers import Caller
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
    NO_CONTROL_CHARACTERS,
    CreatedUser,
    Deprovisioned,
    NewMember,
    NewUser,
    SuspensionResult,
    UpdatedUser,
    User,
    UserChange,
    UserPage,
)
from accord.entrypoints.api.security import AccordDep, AnyCaller, IdempotencyKey, PlatformCaller
from accord.services import deprovisioning, profile, provisioning, reads, suspension

router = APIRouter(tags=["users"])

CREATE_PROBLEMS = (
    *WITH_BODY,
    *AUTHENTICATED,
    *DATABASE,
    *OPERATION,
    "email_invalid",
    "email_confusable",
    "email_exists",
    "identity_exists",
    "organization_not_found",
    "organization_full",
)
CREATE_DESCRIPTION = (
    "Create the user in the identity provider and in accord, then add them to the "
    "organization. An account that already exists in the identity provider is adopted only if "
    "accord created it (a retry); one that accord did not create answers 409 "
    "`identity_exists`, unless a platform token sends `adopt_existing: true`. **201** when "
    "done; **202** with `Location` and `Retry-After` when the identity provider is "
    "unavailable: the operation goes on in the background. Send an `Idempotency-Key` to make "
    "retries safe."
)


def _new_user(body: NewMember, organization_id: UUID) -> provisioning.NewUser:
    return provisioning.NewUser(
        email=body.email,
        full_name=body.full_name,
        organization_id=organization_id,
        role=body.role,
        permissions=tuple(body.permissions),
        credential=body.credential,
        adopt_existing=body.adopt_existing,
    )


async def _create(
    request: Request, accord: Accord, caller: Caller, key: str | None, new: provisioning.NewUser
) -> dict[str, Any]:
    return await run_operation(
        request,
        OperationKind.CREATE_USER,
        lambda: provisioning.create_user(accord, new, caller=caller, idempotency_key=key),
    )


@router.post(
    "/api/admin/users",
    status_code=201,
    response_model=CreatedUser,
    responses={**PENDING_RESPONSE, **documented(*CREATE_PROBLEMS)},
    summary="Create a user in any organization (platform token)",
    description=CREATE_DESCRIPTION,
)
async def create_user(
    request: Request, body: NewUser, accord: AccordDep, caller: PlatformCaller, key: IdempotencyKey
) -> dict[str, Any]:
    """Create a user in the organization the body names."""
    return await _create(request, accord, caller, key, _new_user(body, body.organization_id))


@router.post(
    "/api/admin/organizations/{org_id}/users",
    status_code=201,
    response_model=CreatedUser,
    responses={**PENDING_RESPONSE, **documented(*CREATE_PROBLEMS)},
    summary="Create a user in this organization (platform token or this organization's)",
    description=CREATE_DESCRIPTION,
)
async def create_member(
    request: Request,
    org_id: UUID,
    body: NewMember,
    accord: AccordDep,
    caller: AnyCaller,
    key: IdempotencyKey,
) -> dict[str, Any]:
    """Create a user in the organization the URL names."""
    return await _create(request, accord, caller, key, _new_user(body, org_id))


@router.get(
    "/api/admin/users",
    response_model=UserPage,
    responses=documented(
        "invalid_input",
        "email_invalid",
        "email_confusable",
        "organization_not_found",
        *AUTHENTICATED,
        *DATABASE,
    ),
    summary="List users, a page at a time",
    description="Ordered by id. An organization token sees only its organization's members.",
)
async def list_users(
    accord: AccordDep,
    caller: AnyCaller,
    organization_id: Annotated[UUID | None, Query(description="Only its members.")] = None,
    email: Annotated[
        str | None,
        Query(description="Exactly this address.", max_length=320, pattern=NO_CONTROL_CHARACTERS),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(description="`next_cursor` of the previous page.", pattern=r"^[A-Za-z0-9_\-]{1,64}$"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=reads.MAX_PAGE_SIZE)] = 50,
) -> dict[str, Any]:
    """A page of users and the cursor of the next."""
    return await reads.list_users_page(
        accord,
        caller=caller,
        organization_id=organization_id,
        email=email,
        cursor=cursor,
        limit=limit,
    )


@router.get(
    "/api/admin/users/{user_id}",
    response_model=User,
    responses=documented("invalid_input", "user_not_found", *AUTHENTICATED, *DATABASE),
    summary="Read a user",
)
async def get_user(user_id: UUID, accord: AccordDep, caller: AnyCaller) -> dict[str, Any]:
    """One user with their memberships."""
    return await reads.get_user(accord, user_id, caller=caller)


@router.delete(
    "/api/admin/users/{user_id}",
    response_model=Deprovisioned,
    responses={
        **PENDING_RESPONSE,
        **documented("invalid_input", "user_not_found", *AUTHENTICATED, *DATABASE, *OPERATION),
    },
    summary="Deprovision a user",
    description=(
        "Cut access at once, delete the user's identity provider account, memberships and "
        "links. Deprovisioning a user twice succeeds. 409 `operation_in_progress` while the "
        "user is still being provisioned. With an organization token, a user who is also a "
        "member of another organization, or whose identity accord did not create, is only "
        "removed from the token's organization (`removed_from_organization`); another "
        "organization's user answers 404 `user_not_found`."
    ),
)
async def delete_user(
    request: Request, user_id: UUID, accord: AccordDep, caller: AnyCaller, key: IdempotencyKey
) -> dict[str, Any]:
    """Deprovision a user."""
    return await run_operation(
        request,
        OperationKind.DEPROVISION,
        lambda: deprovisioning.deprovision_user(
            accord, user_id, caller=caller, idempotency_key=key
        ),
    )


@router.patch(
    "/api/admin/users/{user_id}",
    response_model=UpdatedUser,
    responses={
        **PENDING_RESPONSE,
        **documented(
            *WITH_BODY,
            *AUTHENTICATED,
            *DATABASE,
            *OPERATION,
            "email_invalid",
            "email_confusable",
            "email_exists",
            "identity_exists",
            "user_not_found",
            "user_not_linked",
        ),
    },
    summary="Change a user's e-mail address, name or platform-administrator flag",
    description=(
        "A new e-mail address or name is changed in the identity provider and in accord as one "
        "operation: the new address is reserved first (409 `email_exists` if a user has it), "
        "an account of another system that has it answers 409 `identity_exists`, and a failure "
        "puts the old address back in both. The old address gets a notice. The same values "
        "again: 200, nothing changes. **202** with `Location` when the identity provider is "
        "unavailable: the change goes on in the background. `is_platform_admin` needs a "
        "platform token. An organization token may change only users whose every membership is "
        "in its organization; any other user answers 404 `user_not_found`."
    ),
)
async def update_user(
    request: Request,
    user_id: UUID,
    body: UserChange,
    accord: AccordDep,
    caller: AnyCaller,
    key: IdempotencyKey,
) -> dict[str, Any]:
    """Change a user's profile."""
    change = profile.ProfileChange(
        email=body.email, full_name=body.full_name, is_platform_admin=body.is_platform_admin
    )
    return await run_operation(
        request,
        OperationKind.CHANGE_EMAIL,
        lambda: profile.update_user(accord, user_id, change, caller=caller, idempotency_key=key),
    )


SUSPENSION_PROBLEMS = (
    "invalid_input",
    "user_not_found",
    "user_deprovisioned",
    "forbidden",
    "idp_rejected",
    *AUTHENTICATED,
    *DATABASE,
    *OPERATION,
)
SUSPENSION_TENANCY = (
    " With an organization token: only a user whose every membership is in the token's "
    "organization (403 `forbidden` for a member of another organization too; 404 "
    "`user_not_found` for another organization's user). 409 `operation_in_progress` while "
    "another operation works on the user; 409 `user_deprovisioned` for a deprovisioned user. "
    "**202** with `Location` and `Retry-After` when the identity provider is unavailable: the "
    "operation goes on in the background. Send an `Idempotency-Key` to make retries safe."
)


@router.post(
    "/api/admin/users/{user_id}/suspend",
    response_model=SuspensionResult,
    responses={**PENDING_RESPONSE, **documented(*SUSPENSION_PROBLEMS)},
    summary="Suspend a user: refused sign-in, in accord and in the identity provider",
    description=(
        "Cut access at once (`status: suspended`), then block the identity in the identity "
        "provider (Auth0 `blocked`, Keycloak `enabled: false`, Supabase `ban_duration`, the "
        "built-in one: sign-in refused and sessions ended). Memberships and links stay. "
        "Suspending a suspended user succeeds and changes nothing. If the identity provider "
        "refuses the block (422 `idp_rejected`), the user keeps their previous status."
        + SUSPENSION_TENANCY
    ),
)
async def suspend_user(
    request: Request, user_id: UUID, accord: AccordDep, caller: AnyCaller, key: IdempotencyKey
) -> dict[str, Any]:
    """Suspend a user."""
    return await run_operation(
        request,
        OperationKind.SUSPEND,
        lambda: suspension.suspend_user(accord, user_id, caller=caller, idempotency_key=key),
    )


@router.post(
    "/api/admin/users/{user_id}/reactivate",
    response_model=SuspensionResult,
    responses={**PENDING_RESPONSE, **documented(*SUSPENSION_PROBLEMS)},
    summary="Reactivate a suspended user",
    description=(
        "Unblock the identity in the identity provider, then give the user back the status "
        "they had before the suspension (`active`, or `pending` if they never set a password). "
        "Sessions ended by the suspension stay ended. Reactivating a user who is not suspended "
        "succeeds and changes nothing." + SUSPENSION_TENANCY
    ),
)
async def reactivate_user(
    request: Request, user_id: UUID, accord: AccordDep, caller: AnyCaller, key: IdempotencyKey
) -> dict[str, Any]:
    """Reactivate a suspended user."""
    return await run_operation(
        request,
        OperationKind.REACTIVATE,
        lambda: suspension.reactivate_user(accord, user_id, caller=caller, idempotency_key=key),
    )

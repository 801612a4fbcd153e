"""Invitations: the organization's admin side (token), and the public link's side."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from accord.domain import errors
from accord.domain.model import InvitationStatus, OperationKind
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
    AcceptedInvitation,
    Invitation,
    InvitationAcceptance,
    InvitationPage,
    InvitationPreview,
    NewInvitation,
)
from accord.entrypoints.api.security import AccordDep, AnyCaller, IdempotencyKey, public_client
from accord.services import acceptance, invitations, reads

router = APIRouter(tags=["invitations"])
# Public: each request counts against its client address's limit (429), as sign-in's do.
public = APIRouter(tags=["invitations"], dependencies=[Depends(public_client)])

NOT_FOUND = ("invalid_input", "invitation_not_found", *AUTHENTICATED, *DATABASE)
GONE = ("invitation_revoked", "invitation_expired")
NOT_REPLAYED = (
    " The `Idempotency-Key` header is accepted and checked but not needed: repeating this "
    "request changes nothing more, or is refused with the same error."
)


def refuse_unknown_query(request: Request, known: set[str]) -> None:
    """A strict query string, as bodies are: a misspelt filter must not silently list all."""
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise errors.InvalidInput(
            f"Unknown query parameter {unknown[0]!r}; this list takes {', '.join(sorted(known))}."
        )


@router.post(
    "/api/admin/organizations/{org_id}/invitations",
    status_code=201,
    response_model=Invitation,
    responses={
        200: {"model": Invitation, "description": "This address's pending invitation, as it is."},
        **documented(
            *WITH_BODY,
            *AUTHENTICATED,
            *DATABASE,
            "email_invalid",
            "email_confusable",
            "organization_not_found",
            "organization_full",
            "already_member",
        ),
    },
    summary="Invite a person into this organization (platform token or this organization's)",
    description=(
        "Holds a seat from now on (members plus pending invitations never exceed `max_users`: "
        "409 `organization_full`) and mails an accept link after commit. The same address "
        "invited again while its invitation is pending answers **200** with that invitation; "
        "a current member answers 409 `already_member`." + NOT_REPLAYED
    ),
)
async def create_invitation(
    org_id: UUID,
    body: NewInvitation,
    response: Response,
    accord: AccordDep,
    caller: AnyCaller,
    key: IdempotencyKey,
) -> dict[str, Any]:
    """Invite a person by e-mail."""
    request = invitations.Invite(
        organization_id=org_id,
        email=body.email,
        role=body.role,
        permissions=tuple(body.permissions),
        expires_in_hours=body.expires_in_hours,
    )
    found, created = await invitations.invite(accord, request, caller=caller)
    if not created:
        response.status_code = 200
    return found


@router.get(
    "/api/admin/organizations/{org_id}/invitations",
    response_model=InvitationPage,
    responses=documented("invalid_input", "organization_not_found", *AUTHENTICATED, *DATABASE),
    summary="List the organization's invitations, a page at a time",
    description="Ordered by id; `status=expired` includes pending ones past their time.",
)
async def list_invitations(
    request: Request,
    org_id: UUID,
    accord: AccordDep,
    caller: AnyCaller,
    status: Annotated[
        Literal["pending", "accepted", "revoked", "expired"] | None,
        Query(description="Only these."),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(description="`next_cursor` of the previous page.", pattern=r"^[A-Za-z0-9_\-]{1,64}$"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=reads.MAX_PAGE_SIZE)] = 50,
) -> dict[str, Any]:
    """A page of invitations and the cursor of the next."""
    refuse_unknown_query(request, {"status", "cursor", "limit"})
    wanted = InvitationStatus(status) if status else None
    return await invitations.list_invitations(
        accord, org_id, caller=caller, status=wanted, cursor=cursor, limit=limit
    )


@router.get(
    "/api/admin/invitations/{invitation_id}",
    response_model=Invitation,
    responses=documented(*NOT_FOUND),
    summary="Read an invitation",
)
async def get_invitation(
    invitation_id: UUID, accord: AccordDep, caller: AnyCaller
) -> dict[str, Any]:
    """One invitation; another organization's answers 404 as a missing one does."""
    return await invitations.get_invitation(accord, invitation_id, caller=caller)


@router.post(
    "/api/admin/invitations/{invitation_id}/resend",
    response_model=Invitation,
    responses=documented(*NOT_FOUND, *GONE, "already_member", "operation_in_progress"),
    summary="Mail a fresh link (the previous one stops working)",
    description="Each resend mails once; the link of the latest mail is the only one that works."
    " The `Idempotency-Key` header is accepted and checked but not used.",
)
async def resend_invitation(
    invitation_id: UUID, accord: AccordDep, caller: AnyCaller, key: IdempotencyKey
) -> dict[str, Any]:
    """Mail the invitation again, with a new link."""
    return await invitations.resend(accord, invitation_id, caller=caller)


@router.delete(
    "/api/admin/invitations/{invitation_id}",
    response_model=Invitation,
    responses=documented(*NOT_FOUND, "already_member"),
    summary="Revoke an invitation (its seat is free again)",
    description="Revoking twice succeeds; an accepted invitation answers 409 `already_member`."
    + NOT_REPLAYED,
)
async def revoke_invitation(
    invitation_id: UUID, accord: AccordDep, caller: AnyCaller, key: IdempotencyKey
) -> dict[str, Any]:
    """Revoke a pending invitation."""
    return await invitations.revoke(accord, invitation_id, caller=caller)


@public.get(
    "/api/invitations/{token}",
    response_model=InvitationPreview,
    responses=documented("invitation_not_found", *GONE, "too_many_requests", *DATABASE),
    summary="What an invitation link is for (public)",
    description="404 `invitation_not_found` for any token that is not a live link, nothing else.",
)
async def preview_invitation(token: str, accord: AccordDep) -> dict[str, Any]:
    """The organization, the inviter and the invited address."""
    return await invitations.describe(accord, token)


@public.post(
    "/api/invitations/accept",
    response_model=AcceptedInvitation,
    responses={
        **PENDING_RESPONSE,
        **documented(
            *WITH_BODY,
            "invitation_not_found",
            *GONE,
            "password_rejected",
            "password_too_weak",
            "identity_exists",
            "email_exists",
            "already_member",
            "organization_not_found",
            "too_many_requests",
            *OPERATION,
            *DATABASE,
        ),
    },
    summary="Accept an invitation (public: the link's token is the proof)",
    description=(
        "A new person becomes a user (the identity provider's account with the chosen "
        "password, then the membership); a person who has an account already joins the "
        "organization, their password neither needed nor changed. Accepting again, or "
        "concurrently, answers the same and adds nothing. An account in the identity provider "
        "that accord did not create answers 409 `identity_exists`. **202** while the identity "
        "provider is unavailable: the account is finished in the background. The "
        "idempotency key is the invitation's own; an `Idempotency-Key` header is checked only."
    ),
)
async def accept_invitation(
    request: Request, body: InvitationAcceptance, accord: AccordDep, key: IdempotencyKey
) -> dict[str, Any]:
    """Accept the invitation the token stands for."""
    return await run_operation(
        request,
        OperationKind.ACCEPT_INVITATION,
        lambda: acceptance.accept(
            accord, body.token, full_name=body.full_name, password=body.password or ""
        ),
    )

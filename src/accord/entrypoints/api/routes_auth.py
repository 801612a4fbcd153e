"""Public endpoints: registration, and the local identity provider's password pages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from accord.domain.model import OperationKind
from accord.entrypoints.api.problems import DATABASE, OPERATION, PENDING_RESPONSE, documented
from accord.entrypoints.api.routing import run_operation
from accord.entrypoints.api.schemas import (
    Accepted,
    Login,
    LoginResult,
    NewRegistration,
    PasswordSetup,
    PasswordSetupRequest,
    Registered,
    TemporaryPasswordReplacement,
    User,
)
from accord.entrypoints.api.security import AccordDep, IdempotencyKey
from accord.services import credentials, registration, tokens

router = APIRouter(tags=["registration and sign-in"])

IDP_FAULTS = ("idp_unavailable", "idp_not_found", "idp_misconfigured", "idp_error")
NOT_REPLAYED = (
    " The `Idempotency-Key` header is accepted and checked but not needed: this request "
    "changes nothing when repeated, or its repetition is refused with the same error."
)


@router.post(
    "/api/auth/register",
    status_code=201,
    response_model=Registered,
    responses={
        **PENDING_RESPONSE,
        **documented(
            "invalid_input",
            "email_invalid",
            "password_rejected",
            "email_exists",
            *OPERATION,
            *DATABASE,
        ),
    },
    summary="Register: one user and exactly one organization of their own",
    description=(
        "Public: the web and IDE registration pages post here. However often it is retried, "
        "a registration yields one user and one organization. Send an `Idempotency-Key` (a "
        "UUID: public keys share one scope) so that a retry replays the answer."
    ),
)
async def register(
    request: Request, body: NewRegistration, accord: AccordDep, key: IdempotencyKey
) -> dict[str, Any]:
    """Register a person."""
    new = registration.Registration(
        email=body.email,
        password=body.password,
        full_name=body.full_name,
        organization_name=body.organization_name,
        source=body.source,
    )
    return await run_operation(
        request,
        OperationKind.REGISTER,
        lambda: registration.register(accord, new, idempotency_key=key),
    )


@router.post(
    "/api/auth/password/setup-link",
    status_code=202,
    response_model=Accepted,
    responses=documented("invalid_input", *DATABASE),
    summary="Request a set-password link by mail",
    description="Always 202, whether or not an account has this address." + NOT_REPLAYED,
)
async def request_setup_link(
    body: PasswordSetupRequest, accord: AccordDep, key: IdempotencyKey
) -> dict[str, Any]:
    """Queue a set-password mail if the account exists; say nothing either way."""
    await credentials.request_password_setup(accord, body.email)
    return {"detail": "If an account has this address, a set-password link is on its way."}


@router.post(
    "/api/auth/password/setup",
    response_model=User,
    responses=documented(
        "invalid_input", "token_invalid", "password_rejected", *IDP_FAULTS, *DATABASE
    ),
    summary="Set a password with the token from a set-password link",
    description="The link is single-use: a repetition answers 400 `token_invalid`." + NOT_REPLAYED,
)
async def complete_setup(
    body: PasswordSetup, accord: AccordDep, key: IdempotencyKey
) -> dict[str, Any]:
    """Set the password the link's owner chose."""
    return await credentials.complete_password_setup(accord, body.token, body.new_password)


@router.post(
    "/api/auth/login",
    response_model=LoginResult,
    responses=documented(
        "invalid_input",
        "email_invalid",
        "invalid_credentials",
        "password_change_required",
        "forbidden",
        *DATABASE,
    ),
    summary="Sign in with the local identity provider",
    description=(
        "Returns a short-lived signed login token (HS256 JWT, 15 minutes). 403 "
        "`password_change_required` while the password is a temporary one; 403 `forbidden` "
        "when another identity provider handles sign-in." + NOT_REPLAYED
    ),
)
async def login(body: Login, accord: AccordDep, key: IdempotencyKey) -> dict[str, Any]:
    """Check the password; return a login token."""
    user = await credentials.verify_password(accord, body.email, body.password)
    token, expires_in = tokens.issue_login_token(accord, user)
    return {"access_token": token, "token_type": "Bearer", "expires_in": expires_in, "user": user}


@router.post(
    "/api/auth/password/replace-temporary",
    response_model=User,
    responses=documented(
        "invalid_input",
        "email_invalid",
        "invalid_credentials",
        "password_rejected",
        "forbidden",
        *IDP_FAULTS,
        *DATABASE,
    ),
    summary="Replace a temporary password with one the person chose (local identity provider)",
    description="A repetition answers 401 `invalid_credentials`: the temporary password is gone."
    + NOT_REPLAYED,
)
async def replace_temporary(
    body: TemporaryPasswordReplacement, accord: AccordDep, key: IdempotencyKey
) -> dict[str, Any]:
    """Swap the temporary password for the new one."""
    return await credentials.replace_temporary_password(
        accord, body.email, body.temporary_password, body.new_password
    )

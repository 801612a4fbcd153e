"""Public endpoints: registration, and the local identity provider's password pages."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from accord.domain import errors
from accord.domain.model import OperationKind
from accord.entrypoints.api.problems import DATABASE, OPERATION, PENDING_RESPONSE, documented
from accord.entrypoints.api.routing import run_operation
from accord.entrypoints.api.schemas import (
    Accepted,
    EmailChangeConfirmation,
    EmailChangeRequest,
    Login,
    LoginResult,
    NewRegistration,
    PasswordSetup,
    PasswordSetupRequest,
    PendingOperation,
    Registered,
    RegistrationVerification,
    TemporaryPasswordReplacement,
    UpdatedUser,
    User,
    VerificationSent,
)
from accord.entrypoints.api.security import (
    AccordDep,
    Credentials,
    IdempotencyKey,
    PublicClient,
    public_client,
)
from accord.services import (
    credentials,
    email_change,
    registration,
    sessions,
    throttling,
    tokens,
    verification,
)

# Every route here is public: each request counts against its client address's limit (429).
router = APIRouter(tags=["registration and sign-in"], dependencies=[Depends(public_client)])
THROTTLED = ("too_many_requests",)

IDP_FAULTS = ("idp_unavailable", "idp_not_found", "idp_misconfigured", "idp_error")
NOT_REPLAYED = (
    " The `Idempotency-Key` header is accepted and checked but not needed: this request "
    "changes nothing when repeated, or its repetition is refused with the same error."
)


REGISTRATION_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {
        **PENDING_RESPONSE[202],
        "model": VerificationSent | PendingOperation,
        "description": (
            '`{"status": "verification_sent"}` (with `registration.verify_email`, the '
            "default): the same answer whether or not the address has an account. A new "
            "address gets a verification link; the owner of a taken one is told that someone "
            "tried to register. With `false`: " + PENDING_RESPONSE[202]["description"]
        ),
    }
}


@router.post(
    "/api/auth/register",
    status_code=201,
    response_model=Registered,
    responses={
        **REGISTRATION_ACCEPTED,
        **documented(
            *THROTTLED,
            "invalid_input",
            "email_invalid",
            "email_confusable",
            "password_rejected",
            "password_too_weak",
            "email_exists",
            *OPERATION,
            *DATABASE,
        ),
    },
    summary="Register: one user and exactly one organization of their own",
    description=(
        "Public: the web and IDE registration pages post here. With "
        "`ACCORD_REGISTRATION__VERIFY_EMAIL` (default `true`) it answers 202 "
        "`verification_sent` for every address and the account exists once the mailed link "
        "is used (`POST /api/auth/register/verify`); a repetition mails another link (the "
        "first one used makes the account). With `false` it registers at once (201; "
        "409 `email_exists` for a taken address): however often it is retried, a registration "
        "yields one user and one organization. Send an `Idempotency-Key` (a UUID: public keys "
        "share one scope) so that a retry replays the answer."
    ),
)
async def register(
    request: Request, body: NewRegistration, accord: AccordDep, key: IdempotencyKey
) -> Any:
    """Register a person, or mail the link that will."""
    new = registration.Registration(
        email=body.email,
        password=body.password,
        full_name=body.full_name,
        organization_name=body.organization_name,
        source=body.source,
    )
    if accord.settings.registration.verify_email:
        await verification.request_registration(accord, new)
        return JSONResponse({"status": "verification_sent"}, status_code=202)
    return await run_operation(
        request,
        OperationKind.REGISTER,
        lambda: registration.register(accord, new, idempotency_key=key),
    )


@router.post(
    "/api/auth/register/verify",
    status_code=201,
    response_model=Registered,
    responses={
        **PENDING_RESPONSE,
        **documented(
            *THROTTLED,
            "invalid_input",
            "token_invalid",
            "password_rejected",
            "password_too_weak",
            "email_exists",
            *OPERATION,
            *DATABASE,
        ),
    },
    summary="Use an e-mail verification link: the account and its one organization",
    description=(
        "Public: the page that a verification link opens posts its token here. The link is "
        "single-use: of any number of uses, concurrent ones included, exactly one makes the "
        "account (201); the others answer 400 `token_invalid`, as does an expired link."
        + NOT_REPLAYED
    ),
)
async def verify_registration(
    request: Request, body: RegistrationVerification, accord: AccordDep, key: IdempotencyKey
) -> dict[str, Any]:
    """Make the account that a verification link stands for."""
    return await run_operation(
        request,
        OperationKind.REGISTER,
        lambda: verification.verify_registration(accord, body.token),
    )


@router.post(
    "/api/auth/password/setup-link",
    status_code=202,
    response_model=Accepted,
    responses=documented("invalid_input", *THROTTLED, *DATABASE),
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
        *THROTTLED,
        "invalid_input",
        "token_invalid",
        "password_rejected",
        "password_too_weak",
        *IDP_FAULTS,
        *DATABASE,
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
        *THROTTLED,
        "invalid_input",
        "email_invalid",
        "email_confusable",
        "invalid_credentials",
        "too_many_attempts",
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
async def login(
    body: Login, accord: AccordDep, key: IdempotencyKey, client: PublicClient
) -> dict[str, Any]:
    """Check the password (unless the account or address failed too often); a login token."""
    user = await throttling.sign_in(accord, body.email, body.password, client)
    token, expires_in = tokens.issue_login_token(accord, user)
    return {"access_token": token, "token_type": "Bearer", "expires_in": expires_in, "user": user}


@router.post(
    "/api/auth/password/replace-temporary",
    response_model=User,
    responses=documented(
        *THROTTLED,
        "invalid_input",
        "email_invalid",
        "email_confusable",
        "invalid_credentials",
        "password_rejected",
        "password_too_weak",
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


@router.post(
    "/api/auth/email-change",
    status_code=202,
    response_model=Accepted,
    responses=documented(
        *THROTTLED,
        "invalid_input",
        "email_invalid",
        "email_confusable",
        "unauthenticated",
        "forbidden",
        *DATABASE,
    ),
    summary="Ask to change your e-mail address (signed in, local identity provider)",
    description=(
        "Send the login token of `POST /api/auth/login` as `Authorization: Bearer`. The new "
        "address receives a single-use link; the change applies when it is used "
        "(`POST /api/auth/email-change/confirm`). The answer is the same whether or not the "
        "address is taken. 403 `forbidden` when another identity provider handles sign-in."
        + NOT_REPLAYED
    ),
)
async def request_email_change(
    body: EmailChangeRequest, accord: AccordDep, credentials: Credentials, key: IdempotencyKey
) -> dict[str, Any]:
    """Mail a link to the new address."""
    if credentials is None:
        raise errors.Unauthenticated("Sign in first: send the login token as a Bearer token.")
    claims = tokens.verify_login_token(accord, credentials.credentials)
    return await email_change.request_email_change(accord, UUID(claims["sub"]), body.new_email)


@router.post(
    "/api/auth/email-change/confirm",
    response_model=UpdatedUser,
    responses={
        **PENDING_RESPONSE,
        **documented(
            *THROTTLED,
            "invalid_input",
            "token_invalid",
            "email_exists",
            "identity_exists",
            "forbidden",
            *OPERATION,
            *DATABASE,
        ),
    },
    summary="Use an e-mail change link: the account takes the new address",
    description=(
        "The link is single-use: of any number of uses, exactly one changes the address (200, "
        "or 202 while the identity provider is unavailable); the others, and an expired link, "
        "answer 400 `token_invalid`. A taken address answers 409 `email_exists` (or "
        "`identity_exists`). The old address gets a notice." + NOT_REPLAYED
    ),
)
async def confirm_email_change(
    request: Request, body: EmailChangeConfirmation, accord: AccordDep, key: IdempotencyKey
) -> dict[str, Any]:
    """Apply the change a link stands for."""
    return await run_operation(
        request,
        OperationKind.CHANGE_EMAIL,
        lambda: email_change.confirm_email_change(accord, body.token),
    )


@router.get(
    "/api/auth/session",
    response_model=User,
    responses=documented(*THROTTLED, "unauthenticated", "user_suspended", *DATABASE),
    summary="The signed-in user of a login token, while its session holds",
    description=(
        "Send the login token of `POST /api/auth/login` as `Authorization: Bearer`. 401 "
        "`unauthenticated` when it is invalid or expired, or its session ended (a suspension "
        "ends every session issued before it, also after a reactivation); 403 "
        "`user_suspended` while the user is suspended."
    ),
)
async def session(
    accord: AccordDep,
    authorization: Annotated[str | None, Header(description="`Bearer <login token>`")] = None,
) -> dict[str, Any]:
    """The user whose session this login token is."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthenticated("Send the login token as `Authorization: Bearer <token>`.")
    return await sessions.current_user(accord, token.strip())

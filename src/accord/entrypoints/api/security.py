"""Who is calling: the bearer API token becomes a Caller (its scope decides what it may touch,
G10), ``X-Acting-User`` names the person for the audit trail, and ``Idempotency-Key`` is read
and checked here, once, for every route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.idempotency import KEY_PATTERN
from accord.services import throttling, tokens

IDEMPOTENCY_KEY_LIFETIME_HOURS = 24

bearer = HTTPBearer(
    scheme_name="ApiToken",
    bearerFormat="acc_…",
    description="An API token from `accord tokens create --platform` or `--org ORG_ID`.",
    auto_error=False,
)


# Every dependency is ``async def``: FastAPI runs a plain ``def`` one in its thread pool, a
# thread hop (and two event-loop wake-ups) per request for a few attribute reads (issue 12;
# tests/unit/test_api_dependencies.py keeps it so).


async def get_accord(request: Request) -> Accord:
    """The Accord this application serves."""
    return request.app.state.accord


AccordDep = Annotated[Accord, Depends(get_accord)]

ActingUserHeader = Annotated[
    str | None,
    Header(
        alias="X-Acting-User",
        description=(
            "The person acting through this token, recorded in the audit trail as a *claim* "
            "(`claimed_actor`), next to the token that was authenticated. 1 to 200 printable "
            "characters in UTF-8 (any script); control and bidi characters answer 400 "
            "`invalid_acting_user`."
        ),
    ),
]


def utf8_header(value: str) -> str:
    """A header value as its sender's UTF-8: Starlette decodes header bytes as latin-1."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not UTF-8 (or not latin-1-decoded bytes): refused, never mojibake
        raise errors.InvalidActingUser(
            "The X-Acting-User header is not valid UTF-8; send the name encoded as UTF-8."
        ) from None


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description=(
            'A unique key (1 to 255 visible ASCII characters, no `"`; a UUID is a good '
            "choice) that "
            "makes a retry safe: the same key with the same body replays the stored response "
            "(success or error); with a different body the answer is 422 "
            "`idempotency_key_reused`; while the first request still runs, 409 "
            "`operation_in_progress`. Keys are scoped to the caller (API token) and kept for "
            f"at least {IDEMPOTENCY_KEY_LIFETIME_HOURS} hours."
        ),
        min_length=1,
        max_length=257,
        pattern=rf'^"?{KEY_PATTERN}"?$',
    ),
]


async def idempotency_key(key: IdempotencyKeyHeader = None) -> str | None:
    """The key, unquoted if it was sent as a structured-field string (``"..."``)."""
    if key is not None and len(key) >= 2 and key[0] == key[-1] == '"':
        return key[1:-1]
    return key


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def token_caller(
    request: Request,
    accord: AccordDep,
    credentials: Credentials,
    acting_user: ActingUserHeader = None,
) -> Caller:
    """The caller an API token stands for; 401 ``unauthenticated`` without a valid one."""
    if credentials is None:
        raise errors.Unauthenticated()
    caller = await tokens.authenticate(accord, credentials.credentials)
    request.state.caller = caller.key
    return caller.acting_as(utf8_header(acting_user) if acting_user is not None else None)


async def platform_caller(caller: Annotated[Caller, Depends(token_caller)]) -> Caller:
    """A caller with platform scope; 403 ``forbidden`` for an organization token."""
    caller.require_platform()
    return caller


async def caller_or_public(
    request: Request,
    accord: AccordDep,
    credentials: Credentials,
    acting_user: ActingUserHeader = None,
) -> Caller:
    """The token's caller if a token is sent, else the public caller (registrations)."""
    if credentials is None:
        return Caller.public()
    return await token_caller(request, accord, credentials, acting_user)


AnyCaller = Annotated[Caller, Depends(token_caller)]
PlatformCaller = Annotated[Caller, Depends(platform_caller)]
CallerOrPublic = Annotated[Caller, Depends(caller_or_public)]


async def public_client(request: Request, accord: AccordDep) -> str:
    """The client's address (the peer's, or a trusted proxy's X-Forwarded-For), after counting
    this public request against its limit: 429 ``too_many_requests`` past it."""
    client = request.client.host if request.client else "unknown"
    await throttling.admit_public(accord, client)
    return client


PublicClient = Annotated[str, Depends(public_client)]

"""API tokens (who may call the HTTP API, with which scope: G10) and short-lived login tokens.

API tokens are 256-bit random strings with a recognisable prefix (``acc_``, so secret scanners
and people can tell what leaked); only their SHA-256 digest is stored (G9) and the token is
shown once, when created. A token's caller key ``token:<id>`` scopes its idempotency keys.

Login tokens prove, for a few minutes, that someone signed in with the local identity provider:
an HS256 JWT signed with a key derived from the server key, made and checked with the standard
library only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from uuid import UUID, uuid4

from accord.domain import errors, secrets
from accord.domain.callers import Caller
from accord.domain.errors import ApiTokenNotFound
from accord.domain.model import TokenScope
from accord.domain.records import AuditEvent
from accord.services.context import Context
from accord.services.directory import get_organization
from accord.services.ids import parse_id
from accord.services.views import api_token_json

TOKEN_PREFIX = "acc_"
MAX_TOKEN_LENGTH = 200
MAX_NAME_LENGTH = 100
LOGIN_TOKEN_TTL_SECONDS = 15 * 60
LOGIN_AUDIENCE = "accord:login"
_LOGIN_KEY_PURPOSE = "login tokens"


# -- API tokens ----------------------------------------------------------------------------------


async def create_token(
    accord: Context, *, name: str, organization_id: str | UUID | None = None
) -> tuple[str, dict[str, Any]]:
    """Create an API token (platform scope without an organization); return (token, record).

    The token text exists only in the return value: show it once, it cannot be recovered.
    """
    clean = " ".join((name or "").split())
    if not clean or len(clean) > MAX_NAME_LENGTH:
        raise errors.InvalidInput(f"The token name must be 1 to {MAX_NAME_LENGTH} characters.")
    org_id = None
    if organization_id is not None:
        org_id = UUID((await get_organization(accord, organization_id))["id"])
    token = TOKEN_PREFIX + secrets.new_token()
    async with accord.store.transaction() as tx:
        record = await tx.api_tokens.insert(
            token_id=uuid4(),
            digest=secrets.digest(token),
            name=clean,
            scope=TokenScope.PLATFORM if org_id is None else TokenScope.ORGANIZATION,
            organization_id=org_id,
        )
        await tx.audit.record(
            AuditEvent(
                actor="accord",
                action="api_token.created",
                organization_id=org_id,
                data={"token_id": str(record.id), "name": clean, "scope": record.scope.value},
            )
        )
    return token, api_token_json(record)


async def revoke_token(accord: Context, token_id: str | UUID) -> None:
    """Revoke a token at once (idempotent); ApiTokenNotFound if there never was one."""
    tid = parse_id(token_id, "The token id")
    async with accord.store.transaction() as tx:
        if not await tx.api_tokens.revoke(tid):
            raise ApiTokenNotFound(f"No API token {tid}.")
        await tx.audit.record(
            AuditEvent(actor="accord", action="api_token.revoked", data={"token_id": str(tid)})
        )


async def authenticate(accord: Context, token_text: str | None) -> Caller:
    """The caller that ``token_text`` stands for; Unauthenticated if unknown or revoked."""
    text = (token_text or "").strip()
    if not text.startswith(TOKEN_PREFIX) or len(text) > MAX_TOKEN_LENGTH:
        raise errors.Unauthenticated()
    async with accord.store.statement() as tx:
        record = await tx.api_tokens.live(secrets.digest(text))
    if record is None:
        raise errors.Unauthenticated("The API token is unknown or has been revoked.")
    key = f"token:{record.id}"
    if record.scope == TokenScope.SCIM:  # /scim/v2 only (services/scim_tokens.py)
        raise errors.Unauthenticated("A SCIM token is accepted on /scim/v2 only.")
    if record.scope == TokenScope.PLATFORM:
        return Caller.platform(key)
    if record.organization_id is None:  # the schema forbids it; never widen a scope
        raise errors.Unauthenticated("The API token has no organization.")
    return Caller.organization(key, record.organization_id)


# -- login tokens (local identity provider) ------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(accord: Context, signing_input: str) -> str:
    key = accord.sealer.derived_key(_LOGIN_KEY_PURPOSE)
    return _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def issue_login_token(
    accord: Context, user: dict[str, Any], *, ttl_seconds: int = LOGIN_TOKEN_TTL_SECONDS
) -> tuple[str, int]:
    """A signed login token (HS256 JWT) for ``user``; returns it and its lifetime in seconds."""
    moment = accord.clock.now()
    now = int(moment.timestamp())
    claims = {
        "iss": "accord",
        "aud": LOGIN_AUDIENCE,
        "sub": str(user["id"]),
        "email": user["email"],
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid4().hex,
        # The issue time to the microsecond (iat has whole seconds): a session revoked by a
        # suspension is told apart from one started just after the reactivation.
        "iat_us": int(moment.timestamp() * 1_000_000),
    }
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}"
    return f"{signing_input}.{_sign(accord, signing_input)}", ttl_seconds


def verify_login_token(accord: Context, token: str) -> dict[str, Any]:
    """The claims of a login token this server signed and that has not expired."""
    invalid = errors.Unauthenticated("The login token is invalid or has expired.")
    parts = (token or "").split(".")
    if len(parts) != 3 or len(token) > 4096:
        raise invalid
    header, payload, signature = parts
    if not hmac.compare_digest(_sign(accord, f"{header}.{payload}"), signature):
        raise invalid
    try:
        algorithm = json.loads(_unb64(header)).get("alg")
        claims: dict[str, Any] = json.loads(_unb64(payload))
    except (ValueError, AttributeError):
        raise invalid from None
    fresh = isinstance(claims.get("exp"), int) and claims["exp"] > accord.clock.now().timestamp()
    if algorithm != "HS256" or claims.get("aud") != LOGIN_AUDIENCE or not fresh:
        raise invalid
    return claims

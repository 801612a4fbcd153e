"""SCIM tokens: the bearer an organization's Okta or Entra ID sends to ``/scim/v2``.

A SCIM token is an API token of scope ``scim`` (the same table, digest and revocation as
``services/tokens.py``; G9): it stands for one organization's SCIM client and is accepted on
``/scim/v2`` only, never on the admin API, and every SCIM request it makes is confined to its
organization (G10). Its text starts with ``scim_`` so that a leaked one is recognised.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from accord.domain import errors, secrets
from accord.domain.callers import Caller
from accord.domain.model import TokenScope
from accord.domain.records import AuditEvent
from accord.services.context import Context
from accord.services.directory import get_organization
from accord.services.ids import parse_id
from accord.services.tokens import MAX_NAME_LENGTH, MAX_TOKEN_LENGTH
from accord.services.views import api_token_json

SCIM_TOKEN_PREFIX = "scim_"


async def create_scim_token(
    accord: Context, organization_id: str | UUID, *, name: str = "scim"
) -> tuple[str, dict[str, Any]]:
    """Create the organization's SCIM token; return (token, record). The token is shown once."""
    clean = " ".join((name or "").split())
    if not clean or len(clean) > MAX_NAME_LENGTH:
        raise errors.InvalidInput(f"The token name must be 1 to {MAX_NAME_LENGTH} characters.")
    org_id = UUID((await get_organization(accord, organization_id))["id"])
    token = SCIM_TOKEN_PREFIX + secrets.new_token()
    async with accord.store.transaction() as tx:
        record = await tx.api_tokens.insert(
            token_id=uuid4(),
            digest=secrets.digest(token),
            name=clean,
            scope=TokenScope.SCIM,
            organization_id=org_id,
        )
        await tx.audit.record(
            AuditEvent(
                actor="accord",
                action="scim_token.created",
                organization_id=org_id,
                data={"token_id": str(record.id), "name": clean},
            )
        )
    return token, api_token_json(record)


async def list_scim_tokens(accord: Context, organization_id: str | UUID) -> list[dict[str, Any]]:
    """The organization's SCIM tokens, revoked ones included (never their text)."""
    org_id = UUID((await get_organization(accord, organization_id))["id"])
    async with accord.store.transaction() as tx:
        records = await tx.api_tokens.list_for(org_id, TokenScope.SCIM)
    return [api_token_json(r) for r in records]


async def revoke_scim_token(accord: Context, token_id: str | UUID) -> None:
    """Revoke a SCIM token at once (idempotent); ApiTokenNotFound if there is no SCIM token."""
    tid = parse_id(token_id, "The token id")
    async with accord.store.transaction() as tx:
        record = await tx.api_tokens.get(tid)
        if record is None or record.scope != TokenScope.SCIM:
            raise errors.ApiTokenNotFound(f"No SCIM token {tid}.")
        await tx.api_tokens.revoke(tid)
        await tx.audit.record(
            AuditEvent(
                actor="accord",
                action="scim_token.revoked",
                organization_id=record.organization_id,
                data={"token_id": str(tid)},
            )
        )


async def authenticate_scim(accord: Context, token_text: str | None) -> Caller:
    """The organization's SCIM client that ``token_text`` stands for; Unauthenticated if it is
    unknown, revoked, or not a SCIM token."""
    text = (token_text or "").strip()
    if not text.startswith(SCIM_TOKEN_PREFIX) or len(text) > MAX_TOKEN_LENGTH:
        raise errors.Unauthenticated("Send the organization's SCIM token as a Bearer token.")
    async with accord.store.transaction() as tx:
        record = await tx.api_tokens.live(secrets.digest(text))
    if record is None or record.scope != TokenScope.SCIM or record.organization_id is None:
        raise errors.Unauthenticated("The SCIM token is unknown or has been revoked.")
    return Caller.organization(f"token:{record.id}", record.organization_id)

"""Self-registration: one person, one IdP user, one user row and exactly one organization (G4).

Only this module creates personal organizations, in the finalize transaction, and the partial
unique index ``uq_organizations_personal_owner`` makes a second one impossible whatever the
entry point (web, IDE, API) or the number of retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db import repository
from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.emails import local_part, normalize_email
from accord.domain.model import (
    OperationKind,
    OrganizationKind,
    RegistrationSource,
    Role,
    UserStatus,
)
from accord.domain.slugs import slug_candidates, slugify
from accord.services import operations
from accord.services.identities import ensure_identity
from accord.services.operations import Flow, Step, register_flow
from accord.services.provisioning import (
    audit_creation,
    claim_row,
    clean_name,
    link,
    release_row,
    run_hooks,
)

if TYPE_CHECKING:
    from accord.bootstrap import Accord

MAX_PASSWORD_LENGTH = 1024
MAX_ORG_NAME_LENGTH = 100


@dataclass(frozen=True)
class Registration:
    """A person signing up."""

    email: str
    password: str = field(repr=False)
    full_name: str
    organization_name: str | None = None
    source: RegistrationSource = RegistrationSource.WEB


async def register(
    accord: Accord,
    request: Registration,
    *,
    caller: Caller | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Register a person.

    Returns ``{"operation_id", "user", "organization", "reused_identity"}``.
    """
    if not request.password or len(request.password) > MAX_PASSWORD_LENGTH:
        raise errors.PasswordRejected("A password of at most 1024 characters is required.")
    org_name = " ".join((request.organization_name or "").split()) or None
    if org_name and len(org_name) > MAX_ORG_NAME_LENGTH:
        raise errors.InvalidInput(
            f"The organization name is longer than {MAX_ORG_NAME_LENGTH} characters."
        )
    body = {
        "email": normalize_email(request.email),
        "full_name": clean_name(request.full_name),
        "organization_name": org_name,
        "source": RegistrationSource(request.source).value,
    }
    caller = (caller or Caller.public()).acting_as(body["email"])
    return await operations.execute(
        accord,
        OperationKind.REGISTER,
        caller=caller,
        idempotency_key=idempotency_key,
        request=body,
        secrets={"password": request.password},
    )


class Register(Flow):
    kind = OperationKind.REGISTER

    async def claim(self, conn: AsyncConnection, accord: Accord, step: Step) -> dict[str, Any]:
        try:
            user_id = await claim_row(conn, step, step.op.request)
        except errors.EmailAlreadyExists:
            raise errors.EmailAlreadyExists(
                "An account with this e-mail address already exists: sign in, or reset your "
                "password."
            ) from None
        return {"user_id": user_id, "flow_state": step.op.flow_state}

    async def ensure_remote(self, accord: Accord, step: Step) -> dict[str, Any]:
        request = step.op.request
        remote, created = await ensure_identity(
            accord,
            step.op,
            email=request["email"],
            full_name=request["full_name"],
            password=step.secrets["password"],
        )
        if not created:
            # An identity nobody registered here: taking it over with a password typed into a
            # public form would hand someone else's account to whoever typed it.
            raise errors.EmailAlreadyExists(
                "An account with this e-mail address already exists: sign in, or reset your "
                "password."
            )
        return {"remote_id": remote.remote_id, "created_remote": True}

    async def finalize(self, conn: AsyncConnection, accord: Accord, step: Step) -> dict[str, Any]:
        op, request = step.op, step.op.request
        assert op.user_id is not None
        await link(conn, accord, op)
        await repository.set_user(conn, op.user_id, status=UserStatus.ACTIVE)
        organization = await personal_organization(conn, op.user_id, request)
        await repository.add_membership(
            conn,
            user_id=op.user_id,
            org_id=organization["id"],
            role=Role.ORG_ADMIN,
            permissions=[],
        )
        await run_hooks(conn, accord, op, organization["id"])
        await audit_creation(conn, op, organization["id"], reused=False)
        await repository.record_audit(
            conn,
            actor=request["actor"],
            action="organization.created",
            organization_id=organization["id"],
            operation_id=op.id,
            data={"slug": organization["slug"], "kind": "personal", "source": request["source"]},
        )
        user = await repository.get_user(conn, op.user_id)
        org = await repository.get_organization(conn, organization["id"])
        return {"user": user, "organization": org, "reused_identity": False}

    async def undo_claim(self, conn: AsyncConnection, accord: Accord, step: Step) -> None:
        await release_row(conn, step)


register_flow(Register())


async def personal_organization(
    conn: AsyncConnection, owner_id: Any, request: dict[str, Any]
) -> dict[str, Any]:
    """The owner's personal organization, created if missing, its slug suffixed on collision."""
    existing = await repository.personal_organization(conn, owner_id)
    if existing is not None:
        return existing
    name = request.get("organization_name") or local_part(request["email"])
    for slug in slug_candidates(slugify(name)):
        created = await repository.insert_organization(
            conn,
            id=uuid4(),
            slug=slug,
            display_name=name,
            kind=OrganizationKind.PERSONAL,
            owner_user_id=owner_id,
        )
        if created is not None:
            return created
        existing = await repository.personal_organization(conn, owner_id)
        if existing is not None:
            return existing
    raise AssertionError("unreachable: slug candidates are endless")

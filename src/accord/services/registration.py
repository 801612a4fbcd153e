"""Self-registration: one person, one IdP user, one user row and exactly one organization (G4).

Only this module creates personal organizations, in the finalize transaction, and the partial
unique index ``uq_organizations_personal_owner`` makes a second one impossible whatever the
entry point (web, IDE, API) or the number of retries.

With ``registration.verify_email`` (the default) a public registration reaches ``register``
only through the link mailed to its address (services/verification.py), whose use is consumed
by the claim; an operator may vouch for the address instead (``accord register --verified``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

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
from accord.domain.principals import audit_by
from accord.domain.records import AuditEvent, NewOrganizationRecord, OrganizationRecord
from accord.domain.slugs import require_visible_name, slug_candidates, slugify
from accord.domain.store import OperationChanges, Transaction
from accord.services import operations
from accord.services.context import Context, Flow, Step
from accord.services.credentials import check_chosen_password
from accord.services.identities import Origin, ensure_identity
from accord.services.provisioning import (
    audit_creation,
    claim_row,
    clean_name,
    finished_user,
    link,
    release_row,
    run_hooks,
)
from accord.services.views import summary_json

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


def registration_body(request: Registration) -> dict[str, Any]:
    """The registration checked and normalized, without its password (which is checked too)."""
    if not request.password or len(request.password) > MAX_PASSWORD_LENGTH:
        raise errors.PasswordRejected("A password of at most 1024 characters is required.")
    org_name = " ".join((request.organization_name or "").split()) or None
    if org_name:
        require_visible_name(org_name)
    if org_name and len(org_name) > MAX_ORG_NAME_LENGTH:
        raise errors.InvalidInput(
            f"The organization name is longer than {MAX_ORG_NAME_LENGTH} characters."
        )
    return {
        "email": normalize_email(request.email),
        "full_name": clean_name(request.full_name),
        "organization_name": org_name,
        "source": RegistrationSource(request.source).value,
    }


async def register(
    accord: Context,
    request: Registration,
    *,
    caller: Caller | None = None,
    idempotency_key: str | None = None,
    verification_id: UUID | None = None,
) -> dict[str, Any]:
    """Register a person at once (the e-mail proven by ``verification_id``'s link, or vouched
    for by the caller).

    Returns ``{"operation_id", "user", "organization", "reused_identity"}``.
    """
    body = registration_body(request)
    if verification_id is not None:  # checked when the link was requested
        body["verification_id"] = str(verification_id)
    else:
        check_chosen_password(accord, request.password, body["email"], body["full_name"])
    return await operations.execute(
        accord,
        OperationKind.REGISTER,
        caller=caller or Caller.public(),
        idempotency_key=idempotency_key,
        request=body,
        secrets={"password": request.password},
    )


class Register(Flow):
    kind = OperationKind.REGISTER

    async def claim(self, tx: Transaction, accord: Context, step: Step) -> OperationChanges:
        verification = step.op.request.get("verification_id")
        # The link is used up by the claim that makes its account, in the claim's transaction:
        # of concurrent uses exactly one claims, and a refused claim leaves the link usable.
        if verification and not await tx.verifications.consume(UUID(verification)):
            raise errors.TokenInvalid()
        try:
            user_id = await claim_row(tx, step, step.op.request)
        except errors.EmailAlreadyExists:
            raise errors.EmailAlreadyExists(
                "An account with this e-mail address already exists: sign in, or reset your "
                "password."
            ) from None
        return {"user_id": user_id, "flow_state": step.op.flow_state}

    async def ensure_remote(self, accord: Context, step: Step) -> OperationChanges:
        request = step.op.request
        remote, origin = await ensure_identity(
            accord,
            step.op,
            email=request["email"],
            full_name=request["full_name"],
            password=step.secrets["password"],
        )
        if origin != Origin.CREATED:
            # An identity this registration did not make (another system's, or one a
            # deprovisioned user left behind): taking it over with a password typed into a
            # public form would hand someone else's account to whoever typed it. A public
            # caller never adopts; it is told what a taken address is told.
            raise errors.EmailAlreadyExists(
                "An account with this e-mail address already exists: sign in, or reset your "
                "password."
            )
        return {"remote_id": remote.remote_id, "created_remote": True}

    async def finalize(self, tx: Transaction, accord: Context, step: Step) -> dict[str, Any]:
        op, request = step.op, step.op.request
        assert op.user_id is not None
        await link(tx, accord, op)
        organization = await personal_organization(tx, op.user_id, request)
        await tx.memberships.put(
            user_id=op.user_id,
            organization_id=organization.id,
            role=Role.ORG_ADMIN,
            permissions=[],
        )
        user = await finished_user(tx, op.user_id, status=UserStatus.ACTIVE)
        await run_hooks(tx, accord, op, organization.id)
        await audit_creation(tx, op, organization.id, reused=False, current=user)
        await tx.audit.record(
            AuditEvent(
                **audit_by(request),
                action="organization.created",
                organization_id=organization.id,
                operation_id=op.id,
                data={"slug": organization.slug, "kind": "personal", "source": request["source"]},
            )
        )
        summary = await tx.organizations.summary(organization.id)
        assert summary is not None
        return {
            "user": user,
            "organization": summary_json(summary),
            "reused_identity": False,
        }

    async def undo_claim(self, tx: Transaction, accord: Context, step: Step) -> None:
        await release_row(tx, step)


async def personal_organization(
    tx: Transaction, owner_id: UUID, request: dict[str, Any]
) -> OrganizationRecord:
    """The owner's personal organization, created if missing, its slug suffixed on collision."""
    existing = await tx.organizations.personal_of(owner_id)
    if existing is not None:
        return existing
    name = request.get("organization_name") or local_part(request["email"])
    for slug in slug_candidates(slugify(name)):
        created = await tx.organizations.insert(
            NewOrganizationRecord(
                id=uuid4(),
                slug=slug,
                display_name=name,
                kind=OrganizationKind.PERSONAL,
                owner_user_id=owner_id,
            )
        )
        if created is not None:
            return created
        existing = await tx.organizations.personal_of(owner_id)
        if existing is not None:
            return existing
    raise AssertionError("unreachable: slug candidates are endless")

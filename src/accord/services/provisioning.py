"""Creating a user in an organization: by a platform admin (any organization) or by an
organization admin (their own only, G10). One durable operation (services/operations.py):

1. claim: the user row in ``provisioning`` (the unique e-mail index settles races), a place in
   the organization checked under its row lock (members plus open claims ≤ max_users, G5);
2. ensure the IdP user: adopt an existing identity (rotating its credential and updating its
   name) or create one;
3. finalize: link, membership, permissions, extension hooks, audit, invitation mail (outbox).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db import operations as store
from accord.adapters.db import repository
from accord.domain import errors, secrets
from accord.domain.callers import Caller
from accord.domain.emails import normalize_email
from accord.domain.model import CredentialMode, OperationKind, Role, UserStatus
from accord.services import operations
from accord.services.hooks import ProvisionedUser
from accord.services.identities import ensure_identity, set_credential
from accord.services.operations import Flow, Step, register_flow

if TYPE_CHECKING:
    from accord.bootstrap import Accord

MAX_NAME_LENGTH = 200
MAX_PERMISSIONS = 200


@dataclass(frozen=True)
class NewUser:
    """A request to create a user in an organization."""

    email: str
    full_name: str
    organization_id: UUID
    role: Role = Role.ORG_USER
    permissions: tuple[str, ...] = field(default_factory=tuple)
    credential: CredentialMode = CredentialMode.INVITE


def clean_name(full_name: str) -> str:
    name = " ".join((full_name or "").split())
    if not name:
        raise errors.InvalidInput("The full name is empty.")
    if len(name) > MAX_NAME_LENGTH:
        raise errors.InvalidInput(f"The full name is longer than {MAX_NAME_LENGTH} characters.")
    return name


def clean_permissions(permissions: tuple[str, ...] | list[str]) -> list[str]:
    cleaned = sorted({p.strip() for p in permissions if p and p.strip()})
    if len(cleaned) > MAX_PERMISSIONS or any(len(p) > 100 for p in cleaned):
        raise errors.InvalidInput(
            f"At most {MAX_PERMISSIONS} permissions of at most 100 characters each are allowed."
        )
    return cleaned


async def create_user(
    accord: Accord, request: NewUser, *, caller: Caller, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Create (or adopt) a user and add them to an organization.

    Returns ``{"operation_id", "user", "reused_identity", "temporary_password"}``; raises
    ``OperationPending`` when the IdP is unavailable and the operation goes on later.
    """
    caller.require_organization(request.organization_id)
    body = {
        "email": normalize_email(request.email),
        "full_name": clean_name(request.full_name),
        "organization_id": str(request.organization_id),
        "role": Role(request.role).value,
        "permissions": clean_permissions(request.permissions),
        "credential": CredentialMode(request.credential).value,
    }
    return await operations.execute(
        accord,
        OperationKind.CREATE_USER,
        caller=caller,
        idempotency_key=idempotency_key,
        request=body,
    )


class CreateUser(Flow):
    kind = OperationKind.CREATE_USER

    async def claim(self, conn: AsyncConnection, accord: Accord, step: Step) -> dict[str, Any]:
        request = step.op.request
        org_id = UUID(request["organization_id"])
        org = await repository.lock_organization(conn, org_id)
        if org is None:
            raise errors.OrganizationNotFound(f"No organization {org_id}.")
        user_id = await claim_row(conn, step, request)
        taken = await repository.count_members(conn, org_id) + await store.count_open_claims(
            conn, org_id
        )
        if taken >= org["max_users"]:
            raise errors.OrganizationFull(
                f"The organization {org['slug']} has reached its limit of {org['max_users']} "
                "members (pending invitations included)."
            )
        sealed = None
        if request["credential"] == CredentialMode.TEMP_PASSWORD:
            step.secrets["temporary_password"] = secrets.temporary_password()
            sealed = accord.sealer.seal(step.secrets)
        return {
            "user_id": user_id,
            "organization_id": org_id,
            "sealed_secrets": sealed,
            "flow_state": step.op.flow_state,
        }

    async def ensure_remote(self, accord: Accord, step: Step) -> dict[str, Any]:
        request = step.op.request
        temporary = step.secrets.get("temporary_password")
        remote, created = await ensure_identity(
            accord, step.op, email=request["email"], full_name=request["full_name"], password=None
        )
        if not created:  # adopted: take it over with a fresh credential and our metadata
            await accord.idp.update(remote.remote_id, full_name=request["full_name"])
        until = None
        if temporary:
            until = datetime.now(UTC) + timedelta(hours=accord.settings.temp_password_ttl_hours)
        await set_credential(
            accord,
            remote.remote_id,
            password=temporary or secrets.new_token(),
            temporary_until=until,
        )
        return {"remote_id": remote.remote_id, "created_remote": created}

    async def finalize(self, conn: AsyncConnection, accord: Accord, step: Step) -> dict[str, Any]:
        op, request = step.op, step.op.request
        org_id, user_id = UUID(request["organization_id"]), op.user_id
        assert user_id is not None and op.remote_id is not None
        if await repository.lock_organization(conn, org_id) is None:
            raise errors.OrganizationNotFound(f"The organization {org_id} was removed meanwhile.")
        temporary = request["credential"] == CredentialMode.TEMP_PASSWORD
        await link(conn, accord, op)
        await repository.set_user(
            conn,
            user_id,
            status=UserStatus.PENDING,
            full_name=request["full_name"],
            require_password_change=temporary,
        )
        await repository.add_membership(
            conn,
            user_id=user_id,
            org_id=org_id,
            role=request["role"],
            permissions=request["permissions"],
        )
        await run_hooks(conn, accord, op, org_id)
        reused = not op.created_remote
        await audit_creation(conn, op, org_id, reused=reused)
        if not temporary:
            await queue_invitation(conn, accord, op)
        user = await repository.get_user(conn, user_id)
        return {"user": user, "reused_identity": reused, "credential": request["credential"]}

    async def undo_claim(self, conn: AsyncConnection, accord: Accord, step: Step) -> None:
        await release_row(conn, step)

    def public_result(self, result: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
        return {**result, "temporary_password": secrets.get("temporary_password")}


register_flow(CreateUser())


# -- pieces shared with registration -------------------------------------------------------------


async def claim_row(conn: AsyncConnection, step: Step, request: dict[str, Any]) -> UUID:
    """Claim the user row for the request's e-mail; EmailAlreadyExists if a live user has it."""
    existing = await repository.user_row_by_email(conn, request["email"])
    user_id = await repository.claim_user_row(
        conn,
        user_id=uuid4(),
        email=request["email"],
        full_name=request["full_name"],
        created_by=request["actor"],
    )
    if user_id is None:
        raise errors.EmailAlreadyExists(
            f"A user with the e-mail address {request['email']} already exists."
        )
    step.op.flow_state["reclaimed"] = existing is not None
    return user_id


async def release_row(conn: AsyncConnection, step: Step) -> None:
    """Undo ``claim_row``: delete the row, or return a reclaimed one to ``disabled``."""
    user_id = step.op.user_id
    if user_id is None:
        return
    if step.op.flow_state.get("reclaimed"):
        await repository.remove_memberships(conn, user_id)
        await repository.unlink_identities(conn, user_id)
        await repository.delete_one_time_tokens(conn, user_id)
        await repository.set_user(conn, user_id, status=UserStatus.DISABLED)
    else:
        await repository.delete_user_row(conn, user_id)


async def link(conn: AsyncConnection, accord: Accord, op: Any) -> None:
    """Link the user to its IdP identity; RemoteConflict if another user holds that identity."""
    holder = await repository.user_linked_to(conn, accord.idp.name, op.remote_id)
    if holder is not None and holder != op.user_id:
        raise errors.RemoteConflict(
            f"The identity provider's user for {op.request['email']} is already linked to "
            "another accord user; run `accord reconcile` to resolve it."
        )
    await repository.link_identity(
        conn,
        user_id=op.user_id,
        provider=accord.idp.name,
        remote_id=op.remote_id,
        created_by_accord=bool(op.created_remote),
    )


async def run_hooks(conn: AsyncConnection, accord: Accord, op: Any, org_id: UUID) -> None:
    """Run the extension hooks inside the finalize transaction; any failure fails the operation."""
    request = op.request
    user = ProvisionedUser(
        user_id=op.user_id,
        email=request["email"],
        full_name=request["full_name"],
        organization_id=org_id,
        role=request.get("role", Role.ORG_ADMIN),
        permissions=tuple(request.get("permissions", ())),
        operation_kind=op.kind.value,
    )
    for hook in accord.hooks.on_user_provisioned:
        try:
            await hook(conn, user)
        except Exception as exc:
            name = getattr(hook, "__qualname__", repr(hook))
            raise errors.HookFailed(
                f"The extension hook {name} failed ({type(exc).__name__}); nothing was created."
            ) from exc


async def audit_creation(conn: AsyncConnection, op: Any, org_id: UUID, *, reused: bool) -> None:
    common = {
        "actor": op.request["actor"],
        "subject_user_id": op.user_id,
        "subject_email": op.request["email"],
        "organization_id": org_id,
        "operation_id": op.id,
    }
    if reused:
        await repository.record_audit(
            conn, action="user.identity_adopted", data={"remote_id": op.remote_id}, **common
        )
    await repository.record_audit(
        conn,
        action=f"user.{'registered' if op.kind == OperationKind.REGISTER else 'created'}",
        data={"role": op.request.get("role", Role.ORG_ADMIN)},
        **common,
    )


async def queue_invitation(conn: AsyncConnection, accord: Accord, op: Any) -> None:
    """Queue the set-password mail; the link itself is minted when the mail is sent."""
    await repository.enqueue_mail(
        conn,
        kind="invitation",
        dedupe_key=f"invitation:{op.id}",
        recipient=op.request["email"],
        payload={
            "user_id": str(op.user_id),
            "full_name": op.request["full_name"],
            "valid_hours": accord.settings.invite_ttl_hours,
        },
    )

"""Creating a user in an organization: by a platform admin (any organization) or by an
organization admin (their own only, G10). One durable operation (services/operations.py):

1. claim: the user row in ``provisioning`` (the unique e-mail index settles races), a place in
   the organization checked under its row lock (members plus open claims ≤ max_users, G5);
2. ensure the IdP user: create one, or adopt one accord made itself (a retry, a ghost create:
   rotating its credential and updating its name). An identity accord did not make (foreign,
   services/identities.py) fails the operation with ``identity_exists`` before anything is
   written to the IdP, unless a platform caller asked for ``adopt_existing``: then it is linked
   as it is, its credential reset only if the request names one (audited
   ``user.credential_reset``);
3. finalize: link, membership, permissions, extension hooks, audit, invitation mail (outbox).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from typing_extensions import Unpack

from accord.domain import errors, secrets
from accord.domain.callers import Caller
from accord.domain.emails import normalize_email
from accord.domain.model import CredentialMode, OperationKind, Role, UserStatus
from accord.domain.principals import audit_by
from accord.domain.records import AuditEvent, OperationRecord
from accord.domain.store import OperationChanges, Transaction, UserChanges
from accord.services import operations
from accord.services.context import Context, Flow, Step
from accord.services.hooks import ProvisionedUser
from accord.services.identities import Origin, ensure_identity, revoke_credential, set_credential
from accord.services.views import user_json

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
    # None: ``invite`` for a new identity; no change for an adopted foreign one.
    credential: CredentialMode | None = None
    adopt_existing: bool = False  # platform callers only: link a foreign identity


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
    accord: Context, request: NewUser, *, caller: Caller, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Create (or adopt) a user and add them to an organization.

    Returns ``{"operation_id", "user", "reused_identity", "temporary_password"}``; raises
    ``OperationPending`` when the IdP is unavailable and the operation goes on later.
    """
    caller.require_organization(request.organization_id)
    if request.adopt_existing and not caller.is_platform:
        raise errors.Forbidden(
            "Only a platform administrator may adopt an identity that accord did not create."
        )
    body = {
        "email": normalize_email(request.email),
        "full_name": clean_name(request.full_name),
        "organization_id": str(request.organization_id),
        "role": Role(request.role).value,
        "permissions": clean_permissions(request.permissions),
        "credential": CredentialMode(request.credential).value if request.credential else None,
        # Kept with the operation: a worker resuming it applies the same rule.
        "adopt_existing": bool(request.adopt_existing),
    }
    return await operations.execute(
        accord,
        OperationKind.CREATE_USER,
        caller=caller,
        idempotency_key=idempotency_key,
        request=body,
        # The new user's id, chosen now: the operation's row names it from its insert on.
        subject=operations.OperationSubject(
            user_id=uuid4(), organization_id=UUID(str(request.organization_id))
        ),
    )


class CreateUser(Flow):
    kind = OperationKind.CREATE_USER

    async def claim(self, tx: Transaction, accord: Context, step: Step) -> OperationChanges:
        request = step.op.request
        changes: OperationChanges = {
            "user_id": await claim_row(tx, step, request),
            "organization_id": UUID(request["organization_id"]),
        }
        if request["credential"] == CredentialMode.TEMP_PASSWORD:
            step.secrets["temporary_password"] = secrets.temporary_password()
            changes["sealed_secrets"] = accord.sealer.seal(step.secrets)
        return changes

    async def claim_last(self, tx: Transaction, accord: Context, step: Step) -> None:
        # The seat is counted last: the organization's lock is held only from here to commit,
        # and only against other claims (G5). This claim is open by now, so it is counted.
        org_id = UUID(step.op.request["organization_id"])
        seats = await tx.organizations.lock_seats(org_id)
        if seats is None:
            raise errors.OrganizationNotFound(f"No organization {org_id}.")
        org, taken = seats
        if taken > org.max_users:
            raise errors.OrganizationFull(
                f"The organization {org.slug} has reached its limit of {org.max_users} "
                "members (pending invitations included)."
            )

    async def ensure_remote(self, accord: Context, step: Step) -> OperationChanges:
        request = step.op.request
        remote, origin = await ensure_identity(
            accord, step.op, email=request["email"], full_name=request["full_name"], password=None
        )
        credential = request.get("credential")
        state = {**step.op.flow_state, "identity": origin.value}
        if origin == Origin.FOREIGN:
            if not request.get("adopt_existing"):  # refused before anything is written
                raise errors.IdentityExists(
                    f"The identity provider already has an account for {request['email']} that "
                    "accord did not create, and accord does not take it over. A platform "
                    "administrator can link it: create the user with adopt_existing: true "
                    "(CLI: accord users create --adopt-existing)."
                )
            state["credential_reset"] = credential is not None
        else:
            credential = credential or CredentialMode.INVITE
            if origin == Origin.OWN:  # accord's own, left by an earlier row: our metadata
                await accord.idp.update(remote.remote_id, full_name=request["full_name"])
        if credential is not None:
            await apply_credential(accord, step, remote.remote_id, reset=origin != Origin.CREATED)
        state["credential"] = credential
        return {
            "remote_id": remote.remote_id,
            "created_remote": origin == Origin.CREATED,
            "flow_state": state,
        }

    async def finalize(self, tx: Transaction, accord: Context, step: Step) -> dict[str, Any]:
        op, request = step.op, step.op.request
        org_id, user_id = UUID(request["organization_id"]), op.user_id
        assert user_id is not None and op.remote_id is not None
        if await tx.organizations.keep(org_id) is None:
            raise errors.OrganizationNotFound(f"The organization {org_id} was removed meanwhile.")
        credential = op.flow_state.get("credential", request.get("credential") or "invite")
        temporary = credential == CredentialMode.TEMP_PASSWORD
        await link(tx, accord, op)
        await tx.memberships.put(
            user_id=user_id,
            organization_id=org_id,
            role=Role(request["role"]),
            permissions=request["permissions"],
        )
        user = await finished_user(
            tx,
            user_id,
            # An adopted identity that keeps its own password is in use already.
            status=UserStatus.ACTIVE if credential is None else UserStatus.PENDING,
            full_name=request["full_name"],
            require_password_change=temporary,
        )
        await run_hooks(tx, accord, op, org_id)
        reused = not op.created_remote
        await audit_creation(tx, op, org_id, reused=reused, current=user)
        if op.flow_state.get("credential_reset"):
            await tx.audit.record(
                AuditEvent(
                    actor=request["actor"],
                    action="user.credential_reset",
                    subject_user_id=user_id,
                    subject_email=request["email"],
                    organization_id=org_id,
                    operation_id=op.id,
                    data={"remote_id": op.remote_id, "credential": credential, "by": op.caller},
                )
            )
        if credential == CredentialMode.INVITE:
            await queue_invitation(tx, accord, op)
        return {
            "user": user,
            "reused_identity": reused,
            "credential": credential,
        }

    async def undo_claim(self, tx: Transaction, accord: Context, step: Step) -> None:
        await release_row(tx, step)

    def secrets_after_idp(self, secrets: dict[str, Any]) -> dict[str, Any]:
        # A replay with the key returns the temporary password again (services/engine.py).
        return {k: v for k, v in secrets.items() if k == "temporary_password"}

    def public_result(self, result: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
        return {**result, "temporary_password": secrets.get("temporary_password")}


async def apply_credential(accord: Context, step: Step, remote_id: str, *, reset: bool) -> None:
    """Give the identity the operation's credential: its temporary password, or for an
    invitation no password anyone knows. An identity this operation created has none already
    (created without one, or with a random one where the vendor requires it); an existing one
    (``reset``) loses the password it had."""
    temporary = step.secrets.get("temporary_password")
    if temporary:
        hours = accord.settings.temp_password_ttl_hours
        await set_credential(
            accord,
            remote_id,
            password=temporary,
            temporary_until=accord.clock.now() + timedelta(hours=hours),
        )
    elif reset:
        await revoke_credential(accord, remote_id)


# -- pieces shared with registration -------------------------------------------------------------


async def user_document(tx: Transaction, user_id: UUID) -> dict[str, Any]:
    view = await tx.users.view(user_id)
    assert view is not None, "the operation's user row exists until the operation ends"
    return user_json(view)


async def finished_user(
    tx: Transaction, user_id: UUID, **changes: Unpack[UserChanges]
) -> dict[str, Any]:
    """The new user's last change and its document, in one round trip: run after its
    membership is put and before the hooks, which see the user finished."""
    view = await tx.users.update_view(user_id, **changes)
    assert view is not None, "the operation's user row exists until the operation ends"
    return user_json(view)


async def claim_row(tx: Transaction, step: Step, request: dict[str, Any]) -> UUID:
    """Claim a new user row for the request's e-mail; EmailAlreadyExists if a user has it.

    The id the operation names (chosen when it was opened), else a new one; never an old row's:
    a deprovisioned user's row gave its e-mail up (``former_email``), and its
    memberships, organizations and history are never handed to whoever uses the address next.
    """
    user_id = await tx.users.claim(
        user_id=step.op.user_id or uuid4(),
        email=request["email"],
        full_name=request["full_name"],
        created_by=request["actor"],
    )
    if user_id is None:
        raise errors.EmailAlreadyExists(
            f"A user with the e-mail address {request['email']} already exists."
        )
    return user_id


async def release_row(tx: Transaction, step: Step) -> None:
    """Undo ``claim_row``: delete the row (or, for an operation that older code started by
    reclaiming a deprovisioned row, retire that row again)."""
    user_id = step.op.user_id
    if user_id is None:
        return
    if step.op.flow_state.get("reclaimed"):
        await tx.memberships.remove_all(user_id)
        await tx.links.unlink_all(user_id)
        await tx.one_time_tokens.delete_for_user(user_id)
        await tx.users.retire(user_id)
    else:
        await tx.users.delete(user_id)


async def link(tx: Transaction, accord: Context, op: OperationRecord) -> None:
    """Link the user to its IdP identity; RemoteConflict if another user holds that identity."""
    assert op.user_id is not None and op.remote_id is not None
    identity = op.flow_state.get("identity")
    by_accord = identity != "foreign" if identity else bool(op.created_remote)
    user_id, provider, remote_id = op.user_id, accord.idp.name, op.remote_id
    holder = await tx.links.link_unless_held(
        user_id=user_id, provider=provider, remote_id=remote_id, created_by_accord=by_accord
    )
    if holder is None:
        return  # linked
    if not await _retired_holder(tx, holder, op):
        raise errors.RemoteConflict(
            f"The identity provider's user for {op.request['email']} is already linked to "
            "another accord user; run `accord reconcile` to resolve it."
        )
    await tx.links.unlink_all(holder)  # a deprovisioned row's leftover: accord's own
    await tx.links.link(
        user_id=user_id, provider=provider, remote_id=remote_id, created_by_accord=by_accord
    )


async def _retired_holder(tx: Transaction, holder: UUID, op: OperationRecord) -> bool:
    """Whether the identity's link belongs to a deprovisioned row of this very e-mail."""
    row = await tx.users.get(holder)
    return (
        row is not None
        and row.status == UserStatus.DISABLED
        and row.former_email == op.request["email"]
        and op.flow_state.get("identity") == "own"
    )


async def run_hooks(tx: Transaction, accord: Context, op: OperationRecord, org_id: UUID) -> None:
    """Run the extension hooks inside the finalize transaction; any failure fails the operation."""
    assert op.user_id is not None
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
            await hook(tx.connection, user)
        except Exception as exc:
            name = getattr(hook, "__qualname__", repr(hook))
            raise errors.HookFailed(
                f"The extension hook {name} failed ({type(exc).__name__}); nothing was created."
            ) from exc


async def audit_creation(
    tx: Transaction,
    op: OperationRecord,
    org_id: UUID,
    *,
    reused: bool,
    current: dict[str, Any] | None = None,
) -> None:
    """``current``: the new user's document, when the flow has just read it (``user_document``
    after the last change to the user and the membership)."""
    by, email = audit_by(op.request), op.request["email"]
    if reused:
        await tx.audit.record(
            AuditEvent(
                **by,
                action="user.identity_adopted",
                subject_user_id=op.user_id,
                subject_email=email,
                organization_id=org_id,
                operation_id=op.id,
                data={"remote_id": op.remote_id},
            )
        )
    await tx.audit.record(
        AuditEvent(
            **by,
            action=f"user.{'registered' if op.kind == OperationKind.REGISTER else 'created'}",
            subject_user_id=op.user_id,
            subject_email=email,
            organization_id=org_id,
            operation_id=op.id,
            data={"role": op.request.get("role", Role.ORG_ADMIN)},
        ),
        current=current,
    )


async def queue_invitation(tx: Transaction, accord: Context, op: OperationRecord) -> None:
    """Queue the set-password mail; the link itself is minted when the mail is sent."""
    await tx.outbox.enqueue(**queue_invitation_row(accord, op))


def queue_invitation_row(accord: Context, op: OperationRecord) -> dict[str, Any]:
    """The outbox row of ``queue_invitation`` (set-wise creation inserts many at once)."""
    return {
        "kind": "invitation",
        "dedupe_key": f"invitation:{op.id}",
        "recipient": op.request["email"],
        "payload": {
            "user_id": str(op.user_id),
            "full_name": op.request["full_name"],
            "valid_hours": accord.settings.invite_ttl_hours,
        },
    }

"""Accepting an invitation: the link's holder joins the organization.

- A person accord does not know yet becomes a user through the durable ``accept_invitation``
  operation, the create path of services/provisioning.py: claim (the user row, the unique
  e-mail index settling races; the invitation keeps holding its seat), the IdP identity with
  the chosen password (argon2id in the local IdP; an identity accord did not create answers
  ``identity_exists`` and is never adopted), then finalize: link, the user ``active``, the
  membership, the invitation ``accepted`` (the membership takes its seat over), audit.
- An accord user who already has the address (live) joins in one transaction: the membership
  and the invitation ``accepted``. Their password is not asked for and, if sent, ignored: they
  keep signing in as before.

Its idempotency key is derived from the invitation (and its latest mailing), so accepting
twice, or concurrently, runs one operation and gives one membership; every acceptance answers
the same, built from the accepted invitation; after a failed acceptance, a resent link may try
again. A revoked invitation answers ``invitation_revoked``, one past its time
``invitation_expired``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.documents import invitation_json
from accord.domain.invitation_store import InvitationRecord
from accord.domain.model import InvitationStatus, OperationKind, Role, UserStatus
from accord.domain.principals import audit_by
from accord.domain.records import AuditEvent, OperationRecord
from accord.domain.store import OperationChanges, Transaction
from accord.services import operations
from accord.services.context import Context, Flow, Step
from accord.services.credentials import check_chosen_password
from accord.services.engine import replay
from accord.services.identities import Origin, ensure_identity
from accord.services.invitations import by_token, require_usable
from accord.services.provisioning import (
    audit_creation,
    claim_row,
    clean_name,
    link,
    release_row,
    run_hooks,
    user_document,
)
from accord.services.registration import MAX_PASSWORD_LENGTH


def idempotency_key(invitation_id: UUID, send: int) -> str:
    """The acceptance's key: the invitation's, per mailing, so that after a failed acceptance
    (``identity_exists``, a failing hook) a resent link may try again."""
    return f"invitation:{invitation_id}:{send}"


async def accept(accord: Context, token: str, *, full_name: str, password: str) -> dict[str, Any]:
    """Accept the invitation whose link carries ``token`` (see the module docstring).

    Returns ``{"invitation", "user", "new_user"}``; raises ``OperationPending`` when the IdP is
    unavailable and the new user's operation goes on later.
    """
    record = await by_token(accord, token)
    if record.status == InvitationStatus.ACCEPTED:
        return await answer(accord, record.id)
    require_usable(record, accord.clock.now())
    async with accord.store.transaction() as tx:
        holder = await tx.users.by_email(record.email)
    ours = record.accept_operation_id is not None  # this invitation's account is under way
    if holder is not None and holder.status == UserStatus.PROVISIONING and not ours:
        raise errors.OperationInProgress(
            "An account for this address is being created right now; try again in a moment."
        )
    if holder is not None and holder.status not in (UserStatus.DISABLED, UserStatus.PROVISIONING):
        return await _join_existing(accord, record.id)
    await _create_person(accord, record, full_name, password)
    return await answer(accord, record.id)


async def _create_person(
    accord: Context, record: InvitationRecord, full_name: str, password: str
) -> None:
    invitation_id, email = record.id, record.email
    if not password or len(password) > MAX_PASSWORD_LENGTH:
        raise errors.PasswordRejected("A password of at most 1024 characters is required.")
    name = clean_name(full_name)
    check_chosen_password(accord, password, email, name)
    caller, key = Caller.public(), idempotency_key(invitation_id, record.sends)
    try:
        await operations.execute(
            accord,
            OperationKind.ACCEPT_INVITATION,
            caller=caller,
            idempotency_key=key,
            request={"invitation_id": str(invitation_id), "email": email, "full_name": name},
            secrets={"password": password},
        )
    except errors.IdempotencyKeyReused:
        # Another acceptance of this invitation (another name or password) came first: its
        # outcome is the invitation's.
        async with accord.store.transaction() as tx:
            first = await tx.operations.find_by_key(caller.key, key)
        if first is None or not first.is_terminal:
            raise errors.OperationInProgress(
                "This invitation is being accepted right now; try again in a moment."
            ) from None
        replay(accord, first)


async def _join_existing(accord: Context, invitation_id: UUID) -> dict[str, Any]:
    async with accord.store.transaction() as tx:
        record = await tx.invitations.get(invitation_id, lock=True)
        if record is None:
            raise errors.InvitationNotFound()
        if record.status != InvitationStatus.ACCEPTED:
            require_usable(record, accord.clock.now())
            user = await tx.users.by_email(record.email)
            if user is None or user.status in (UserStatus.DISABLED, UserStatus.PROVISIONING):
                raise errors.OperationInProgress("The account changed meanwhile; try again.")
            if record.organization_id not in await tx.memberships.organizations_of(user.id):
                await tx.memberships.put(
                    user_id=user.id,
                    organization_id=record.organization_id,
                    role=record.role,
                    permissions=record.permissions,
                )
            await tx.invitations.mark(invitation_id, InvitationStatus.ACCEPTED, user_id=user.id)
            await _audit_accepted(tx, Caller.public().audit_fields(), record, user.id, None)
    return await answer(accord, invitation_id)


async def _audit_accepted(
    tx: Transaction,
    by: dict[str, Any],
    record: Any,
    user_id: UUID,
    operation_id: UUID | None,
) -> None:
    await tx.audit.record(
        AuditEvent(
            **by,
            action="invitation.accepted",
            subject_user_id=user_id,
            subject_email=record.email,
            organization_id=record.organization_id,
            operation_id=operation_id,
            data={
                "invitation_id": str(record.id),
                "role": record.role.value,
                "new_user": operation_id is not None,
            },
        )
    )


async def answer(accord: Context, invitation_id: UUID) -> dict[str, Any]:
    """Every acceptance's answer: the accepted invitation and its user."""
    async with accord.store.transaction() as tx:
        record = await tx.invitations.get(invitation_id)
        if record is None or record.status != InvitationStatus.ACCEPTED:
            raise errors.OperationInProgress(
                "This invitation is being accepted right now; try again in a moment."
            )
        user = await user_document(tx, record.accepted_user_id) if record.accepted_user_id else None
    return {
        "invitation": invitation_json(record, accord.clock.now()),
        "user": user,
        "new_user": record.accept_operation_id is not None,
    }


class AcceptInvitation(Flow):
    """The new person's account, made by the create path (see the module docstring)."""

    kind = OperationKind.ACCEPT_INVITATION

    async def claim(self, tx: Transaction, accord: Context, step: Step) -> OperationChanges:
        request = step.op.request
        invitation_id = UUID(request["invitation_id"])
        record = await tx.invitations.get(invitation_id, lock=True)
        if record is None:
            raise errors.InvitationNotFound()
        require_usable(record, accord.clock.now())
        user_id = await claim_row(tx, step, request)
        # Its seat stays held (even past its time) until finalize or undo.
        await tx.invitations.set_accepting(invitation_id, step.op.id)
        return {
            "user_id": user_id,
            "organization_id": record.organization_id,
            "flow_state": step.op.flow_state,
        }

    async def ensure_remote(self, accord: Context, step: Step) -> OperationChanges:
        request, password = step.op.request, step.secrets["password"]
        remote, origin = await ensure_identity(
            accord,
            step.op,
            email=request["email"],
            full_name=request["full_name"],
            password=password,
        )
        if origin == Origin.FOREIGN:  # never adopted through a public link (G11)
            raise errors.IdentityExists(
                f"The identity provider already has an account for {request['email']} that "
                "accord did not create, and accord does not take it over: ask the "
                "organization's administrator to link it."
            )
        if origin == Origin.OWN:  # accord's own, left by a deprovisioned row: the new person's
            await accord.idp.update(
                remote.remote_id, full_name=request["full_name"], password=password
            )
        return {
            "remote_id": remote.remote_id,
            "created_remote": origin == Origin.CREATED,
            "flow_state": {**step.op.flow_state, "identity": origin.value},
        }

    async def finalize(self, tx: Transaction, accord: Context, step: Step) -> dict[str, Any]:
        op, request = step.op, step.op.request
        assert op.user_id is not None and op.organization_id is not None
        invitation_id = UUID(request["invitation_id"])
        record = await tx.invitations.get(invitation_id, lock=True)
        if record is None or record.status != InvitationStatus.PENDING:
            raise errors.InvitationRevoked(
                "The invitation was revoked while it was being accepted; nothing was created."
            )
        if await tx.organizations.keep(op.organization_id) is None:
            raise errors.OrganizationNotFound("The organization was removed meanwhile.")
        await link(tx, accord, op)
        await tx.users.update(op.user_id, status=UserStatus.ACTIVE, full_name=request["full_name"])
        await tx.memberships.put(
            user_id=op.user_id,
            organization_id=op.organization_id,
            role=record.role,
            permissions=record.permissions,
        )
        await tx.invitations.mark(invitation_id, InvitationStatus.ACCEPTED, user_id=op.user_id)
        await run_hooks(
            tx, accord, _with_role(op, record.role, record.permissions), op.organization_id
        )
        user = await user_document(tx, op.user_id)
        reused = not op.created_remote
        await audit_creation(tx, op, op.organization_id, reused=reused, current=user)
        await _audit_accepted(tx, audit_by(request), record, op.user_id, op.id)
        return {"invitation_id": str(invitation_id), "user": user}

    async def undo_claim(self, tx: Transaction, accord: Context, step: Step) -> None:
        await release_row(tx, step)
        await tx.invitations.set_accepting(UUID(step.op.request["invitation_id"]), None)


def _with_role(op: OperationRecord, role: Role, permissions: tuple[str, ...]) -> OperationRecord:
    """The operation as the hooks read it: the invitation's role and permissions."""
    request = {**op.request, "role": role.value, "permissions": list(permissions)}
    return replace(op, request=request)

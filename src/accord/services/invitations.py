"""Invitations: an organization asks a person by e-mail to join it (one transaction each).

- ``invite`` holds a seat from the start: the pending invitation is counted with the members
  and open claims under the organization's seat lock (``lock_seats``, G5). The same address
  invited again while its invitation is pending gets that invitation back (``created`` False);
  a current member is ``already_member``.
- The mail goes out after commit (the outbox, G8). Its accept link is minted when the mail is
  sent and only its SHA-256 digest is stored (G9); ``resend`` starts a new mailing whose link
  replaces the old one, which stops working at once.
- ``revoke`` frees the seat; housekeeping (``expire_invitations``) marks invitations past their
  time ``expired``, freeing theirs.

Accepting one is services/acceptance.py. An organization-scoped caller manages its own
organization's invitations only: another's answers ``invitation_not_found`` (G10).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from accord.domain import errors, secrets
from accord.domain.callers import Caller
from accord.domain.documents import effective_status, invitation_json
from accord.domain.emails import normalize_email
from accord.domain.invitation_store import InvitationRecord, NewInvitation
from accord.domain.model import InvitationStatus, Role
from accord.domain.records import AuditEvent, OutboxMessage
from accord.domain.store import Transaction
from accord.services.context import Context
from accord.services.ids import parse_id
from accord.services.provisioning import clean_permissions
from accord.services.reads import MAX_PAGE_SIZE, decode_cursor, encode_cursor

MAIL = "organization_invitation"
MAIL_KINDS = frozenset({MAIL})
DEFAULT_HOURS = 72.0
MAX_HOURS = 30 * 24.0


@dataclass(frozen=True)
class Invite:
    """A request to invite a person into an organization."""

    organization_id: UUID
    email: str
    role: Role = Role.ORG_USER
    permissions: tuple[str, ...] = field(default_factory=tuple)
    expires_in_hours: float = DEFAULT_HOURS


def require_usable(record: InvitationRecord, now: datetime) -> None:
    """Raise unless the invitation can still be accepted (pending; in time, or its accept is
    under way already)."""
    if record.status == InvitationStatus.REVOKED:
        raise errors.InvitationRevoked()
    if record.status == InvitationStatus.ACCEPTED:
        raise errors.AlreadyMember("This invitation has been accepted already.")
    if record.status == InvitationStatus.EXPIRED or (
        record.expires_at <= now and record.accept_operation_id is None
    ):
        raise errors.InvitationExpired()


def _hours(value: float) -> float:
    if not 0 < value <= MAX_HOURS:
        raise errors.InvalidInput(
            f"expires_in_hours must be more than 0 and at most {MAX_HOURS:g} (30 days)."
        )
    return float(value)


async def _is_member(tx: Transaction, organization_id: UUID, email: str) -> bool:
    user = await tx.users.by_email(email)
    return user is not None and organization_id in await tx.memberships.organizations_of(user.id)


async def invite(
    accord: Context, request: Invite, *, caller: Caller
) -> tuple[dict[str, Any], bool]:
    """Invite ``request.email``; returns the invitation and whether it is a new one."""
    caller.require_organization(request.organization_id)
    org_id, email = request.organization_id, normalize_email(request.email)
    role, permissions = Role(request.role), clean_permissions(request.permissions)
    now = accord.clock.now()
    expires_at = now + timedelta(hours=_hours(request.expires_in_hours))
    async with accord.store.transaction() as tx:
        if await _is_member(tx, org_id, email):
            raise errors.AlreadyMember(f"{email} is already a member of this organization.")
        # Taken last, so the seat lock is held only for the few statements to commit (G5).
        seats = await tx.organizations.lock_seats(org_id)
        if seats is None:
            raise errors.OrganizationNotFound(f"No organization {org_id}.")
        existing = await tx.invitations.pending_for(org_id, email)
        if existing is not None and existing.expires_at > now:
            return invitation_json(existing, now), False
        if existing is not None:  # past its time, not yet marked: it gives its place up
            await tx.invitations.mark(existing.id, InvitationStatus.EXPIRED)
        org, taken = seats
        if taken >= org.max_users:
            raise errors.OrganizationFull(
                f"The organization {org.slug} has reached its limit of {org.max_users} "
                "members (pending invitations included): revoke an invitation or raise the limit."
            )
        record = await tx.invitations.insert(
            NewInvitation(
                id=uuid4(),
                organization_id=org_id,
                email=email,
                role=role,
                permissions=tuple(permissions),
                invited_by=caller.claimed_actor or caller.actor,
                expires_at=expires_at,
            )
        )
        assert record is not None, "the seat lock keeps a second pending invitation out"
        await _audit(tx, caller, record, "invitation.created", {"role": role.value})
        await _queue_mail(tx, record)
    return invitation_json(record, now), True


async def _queue_mail(tx: Transaction, record: InvitationRecord) -> None:
    await tx.outbox.enqueue(
        kind=MAIL,
        dedupe_key=f"{MAIL}:{record.id}:{record.sends}",  # one message per mailing
        recipient=record.email,
        payload={"invitation_id": str(record.id), "send": record.sends},
    )


async def _audit(
    tx: Transaction, caller: Caller, record: InvitationRecord, action: str, data: dict[str, Any]
) -> None:
    await tx.audit.record(
        AuditEvent(
            **caller.audit_fields(),
            action=action,
            subject_email=record.email,
            subject_user_id=record.accepted_user_id,
            organization_id=record.organization_id,
            data={"invitation_id": str(record.id), **data},
        )
    )


async def list_invitations(
    accord: Context,
    organization_id: str | UUID,
    *,
    caller: Caller,
    status: InvitationStatus | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """A page of the organization's invitations, by id: ``{"items", "next_cursor"}``."""
    org_id = parse_id(organization_id, "The organization id")
    caller.require_organization(org_id)
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise errors.InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}.")
    after = decode_cursor(cursor) if cursor else None
    wanted = InvitationStatus(status) if status else None
    async with accord.store.transaction() as tx:
        if await tx.organizations.get(org_id) is None:
            raise errors.OrganizationNotFound(f"No organization {org_id}.")
        records = await tx.invitations.list(org_id, status=wanted, after=after, limit=limit + 1)
    now = accord.clock.now()
    items = [invitation_json(r, now) for r in records[:limit]]
    more = len(records) > limit
    return {"items": items, "next_cursor": encode_cursor(items[-1]["id"]) if more else None}


async def _visible(
    tx: Transaction, caller: Caller, invitation_id: UUID, *, lock: bool = False
) -> InvitationRecord:
    """The invitation, if the caller may manage it; another tenant's is as missing (G10)."""
    record = await tx.invitations.get(invitation_id, lock=lock)
    if record is None or not caller.can_manage(record.organization_id):
        raise errors.InvitationNotFound(f"No invitation {invitation_id}.")
    return record


async def get_invitation(
    accord: Context, invitation_id: str | UUID, *, caller: Caller
) -> dict[str, Any]:
    """One invitation the caller may manage."""
    found_id = parse_id(invitation_id, "The invitation id")
    async with accord.store.transaction() as tx:
        record = await _visible(tx, caller, found_id)
    return invitation_json(record, accord.clock.now())


async def resend(accord: Context, invitation_id: str | UUID, *, caller: Caller) -> dict[str, Any]:
    """Mail a fresh link; the previous one stops working now."""
    found_id = parse_id(invitation_id, "The invitation id")
    now = accord.clock.now()
    async with accord.store.transaction() as tx:
        record = await _visible(tx, caller, found_id, lock=True)
        require_usable(record, now)
        if record.expires_at <= now:
            raise errors.InvitationExpired()
        if record.accept_operation_id is not None:  # its link is in use right now
            raise errors.OperationInProgress(
                "The invitation is being accepted right now; nothing to resend."
            )
        updated = await tx.invitations.resend(found_id)
        assert updated is not None, "pending under its row lock"
        await _audit(tx, caller, updated, "invitation.resent", {"send": updated.sends})
        await _queue_mail(tx, updated)
    return invitation_json(updated, now)


async def revoke(accord: Context, invitation_id: str | UUID, *, caller: Caller) -> dict[str, Any]:
    """Revoke a pending invitation (its seat is free again); revoking twice succeeds."""
    found_id = parse_id(invitation_id, "The invitation id")
    now = accord.clock.now()
    async with accord.store.transaction() as tx:
        record = await _visible(tx, caller, found_id, lock=True)
        if record.status == InvitationStatus.ACCEPTED:
            raise errors.AlreadyMember(
                "This invitation has been accepted: remove the membership instead."
            )
        if record.status == InvitationStatus.PENDING:
            await tx.invitations.mark(found_id, InvitationStatus.REVOKED)
            await _audit(tx, caller, record, "invitation.revoked", {})
        revoked = await tx.invitations.get(found_id)
    assert revoked is not None
    return invitation_json(revoked, now)


async def expire_invitations(accord: Context) -> int:
    """Mark invitations past their time ``expired`` (housekeeping); their seats are free."""
    async with accord.store.transaction() as tx:
        return await expire_due(tx)


async def expire_due(tx: Transaction) -> int:
    """Expire the invitations past their time in ``tx``, each audited (``invitation.expired``);
    how many."""
    expired = await tx.invitations.expire()
    for record in expired:  # accord itself acted: a system principal
        await tx.audit.record(
            AuditEvent(
                actor="housekeeping",
                action="invitation.expired",
                subject_email=record.email,
                organization_id=record.organization_id,
                data={"invitation_id": str(record.id)},
            )
        )
    return len(expired)


# -- the public side: what a link shows, and its mail ------------------------------------------

MAX_TOKEN_LENGTH = 200


async def by_token(accord: Context, token: str) -> InvitationRecord:
    """The invitation whose live link carries ``token``; ``invitation_not_found`` otherwise."""
    record = None
    if token and len(token) <= MAX_TOKEN_LENGTH:
        async with accord.store.transaction() as tx:
            record = await tx.invitations.by_digest(secrets.digest(token))
    if record is None:
        raise errors.InvitationNotFound(
            "This invitation link is not valid (a newer mail may have replaced it)."
        )
    return record


async def describe(accord: Context, token: str) -> dict[str, Any]:
    """What the link's page shows: the organization, who invited, the invited address."""
    record = await by_token(accord, token)
    now = accord.clock.now()
    if record.status != InvitationStatus.ACCEPTED:
        require_usable(record, now)
    async with accord.store.transaction() as tx:
        org = await tx.organizations.get(record.organization_id)
    assert org is not None, "an organization's invitations go with it"
    return {
        "organization": {"id": str(org.id), "name": org.display_name},
        "inviter": record.invited_by,
        "email": record.email,
        "role": record.role.value,
        "status": effective_status(record, now).value,
        "expires_at": record.expires_at,
    }


def accept_link(accord: Context, token: str) -> str:
    # In the fragment: a browser never sends it, so no server's access log records it.
    return f"{accord.settings.public_url.rstrip('/')}/invitations/accept#token={token}"


async def compose_mail(accord: Context, message: OutboxMessage) -> tuple[str, str] | None:
    """The invitation mail with a link minted now; None if a newer mailing or a change of the
    invitation (accepted, revoked, expired) left nothing to send."""
    token = secrets.new_token()
    invitation_id = UUID(message.payload["invitation_id"])
    async with accord.store.transaction() as tx:
        record = await tx.invitations.issue_link(
            invitation_id, int(message.payload["send"]), secrets.digest(token)
        )
        org = await tx.organizations.get(record.organization_id) if record else None
    if record is None or org is None or record.expires_at <= accord.clock.now():
        return None
    until = record.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"Hello,\n\n{record.invited_by} invited you to join {org.display_name} on accord. "
        f"To accept, open this link:\n\n  {accept_link(accord, token)}\n\n"
        f"The link expires at {until}. A newer invitation mail replaces this link.\n\n"
        "If you did not expect this invitation, you can ignore this message.\n"
    )
    return f"You are invited to join {org.display_name}", body

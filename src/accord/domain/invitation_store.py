"""The store port's repository of invitations to join an organization.

A ``pending`` invitation holds a seat (``Organizations.lock_seats`` counts it, G5) until it is
accepted (the membership takes the seat over in the same transaction), revoked or expired. At
most one invitation per (organization, e-mail) is pending: a partial unique index makes it a
fact. The accept link's token exists only as the SHA-256 digest of its last mailing (G9):
``issue_link`` stores it when the mail is sent, and a resend clears it, so an older link stops
working at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from accord.domain.model import InvitationStatus, Role


@dataclass(frozen=True)
class NewInvitation:
    """An invitation to insert (pending, first mailing)."""

    id: UUID
    organization_id: UUID
    email: str
    role: Role
    permissions: tuple[str, ...]
    invited_by: str  # who the inviter said they are, else the token that invited
    expires_at: datetime


@dataclass(frozen=True)
class InvitationRecord:
    """An invitation as stored (never its link's token, nor its digest)."""

    id: UUID
    organization_id: UUID
    email: str
    role: Role
    permissions: tuple[str, ...]
    status: InvitationStatus
    invited_by: str
    expires_at: datetime
    sends: int  # the number of the mailing whose link is the live one
    accept_operation_id: UUID | None
    accepted_user_id: UUID | None
    accepted_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    updated_at: datetime


class Invitations(Protocol):
    async def insert(self, new: NewInvitation) -> InvitationRecord | None:
        """Insert a pending invitation; None if one is pending for this e-mail already."""
        ...

    async def get(self, invitation_id: UUID, *, lock: bool = False) -> InvitationRecord | None:
        """The invitation (locked ``FOR UPDATE`` when asked), if any."""
        ...

    async def pending_for(self, organization_id: UUID, email: str) -> InvitationRecord | None:
        """The organization's pending invitation of this e-mail (expired or not), if any."""
        ...

    async def by_digest(self, digest: str) -> InvitationRecord | None:
        """The invitation whose live link has this digest, in any state."""
        ...

    async def list(
        self,
        organization_id: UUID,
        *,
        status: InvitationStatus | None = None,
        after: UUID | None = None,
        limit: int = 50,
    ) -> list[InvitationRecord]:
        """The organization's invitations by id, after ``after``; ``status`` ``expired``
        includes pending ones past their time, ``pending`` excludes them."""
        ...

    async def issue_link(
        self, invitation_id: UUID, send: int, digest: str
    ) -> InvitationRecord | None:
        """Store the digest of mailing ``send``'s link if the invitation is still pending and
        ``send`` is its latest mailing; None otherwise (nothing to mail)."""
        ...

    async def resend(self, invitation_id: UUID) -> InvitationRecord | None:
        """Start a new mailing of a pending invitation: ``sends`` grows by one and the old
        link's digest is cleared; None if it is not pending."""
        ...

    async def set_accepting(self, invitation_id: UUID, operation_id: UUID | None) -> None:
        """Record (or clear) the accept operation under way: the seat stays held meanwhile."""
        ...

    async def mark(
        self, invitation_id: UUID, status: InvitationStatus, *, user_id: UUID | None = None
    ) -> bool:
        """Move a pending invitation to ``status`` (accepted by ``user_id``); False if it was
        not pending (of concurrent callers, exactly one gets True)."""
        ...

    async def revoke_pending(self, organization_id: UUID) -> int:
        """Revoke every pending invitation of the organization (its links stop working);
        returns how many."""
        ...

    async def expire(self) -> Sequence[InvitationRecord]:
        """Mark pending invitations past their time ``expired`` (not one being accepted): their
        seats are free again. Returns them, as they are now."""
        ...

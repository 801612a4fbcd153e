"""In-memory invitations (see ``memory_store.py`` and domain/invitation_store.py)."""

from __future__ import annotations

import copy
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from accord.domain.invitation_store import InvitationRecord, NewInvitation
from accord.domain.model import InvitationStatus
from accord.testing.memory_tables import Repository, Tables


def held_seats(tables: Tables, organization_id: UUID, now: datetime) -> int:
    """Pending invitations holding a seat (an expired one only while its accept runs)."""
    return sum(
        1
        for _, r in tables.invitations.values()
        if r.organization_id == organization_id
        and r.status == InvitationStatus.PENDING
        and (r.expires_at > now or r.accept_operation_id is not None)
    )


def _matches(record: InvitationRecord, status: InvitationStatus | None, now: datetime) -> bool:
    past = record.status == InvitationStatus.PENDING and record.expires_at <= now
    if status == InvitationStatus.PENDING:
        return record.status == status and not past
    if status == InvitationStatus.EXPIRED:
        return record.status == status or past
    return status is None or record.status == status


class MemoryInvitations(Repository):
    def _set(
        self, record: InvitationRecord, digest: str | None, **changes: Any
    ) -> InvitationRecord:
        updated = replace(record, **changes, updated_at=self.now())
        self.t.invitations[record.id] = (digest, updated)
        return copy.deepcopy(updated)

    async def insert(self, new: NewInvitation) -> InvitationRecord | None:
        if await self.pending_for(new.organization_id, new.email) is not None:
            return None
        now = self.now()
        record = InvitationRecord(
            **asdict(new),
            status=InvitationStatus.PENDING,
            sends=1,
            accept_operation_id=None,
            accepted_user_id=None,
            accepted_at=None,
            revoked_at=None,
            created_at=now,
            updated_at=now,
        )
        self.t.invitations[new.id] = (None, record)
        return copy.deepcopy(record)

    async def get(self, invitation_id: UUID, *, lock: bool = False) -> InvitationRecord | None:
        found = self.t.invitations.get(invitation_id)
        return copy.deepcopy(found[1]) if found else None

    async def pending_for(self, organization_id: UUID, email: str) -> InvitationRecord | None:
        found = (
            r
            for _, r in self.t.invitations.values()
            if r.organization_id == organization_id
            and r.email == email
            and r.status == InvitationStatus.PENDING
        )
        return copy.deepcopy(next(found, None))

    async def by_digest(self, digest: str) -> InvitationRecord | None:
        found = (r for d, r in self.t.invitations.values() if d == digest)
        return copy.deepcopy(next(found, None))

    async def list(
        self,
        organization_id: UUID,
        *,
        status: InvitationStatus | None = None,
        after: UUID | None = None,
        limit: int = 50,
    ) -> list[InvitationRecord]:
        now = self.now()
        found = sorted(
            (
                r
                for _, r in self.t.invitations.values()
                if r.organization_id == organization_id
                and _matches(r, status, now)
                and (after is None or r.id > after)
            ),
            key=lambda r: r.id,
        )
        return copy.deepcopy(found[:limit])

    async def issue_link(
        self, invitation_id: UUID, send: int, digest: str
    ) -> InvitationRecord | None:
        found = self.t.invitations.get(invitation_id)
        if found is None or found[1].status != InvitationStatus.PENDING or found[1].sends != send:
            return None
        return self._set(found[1], digest)

    async def resend(self, invitation_id: UUID) -> InvitationRecord | None:
        found = self.t.invitations.get(invitation_id)
        if found is None or found[1].status != InvitationStatus.PENDING:
            return None
        return self._set(found[1], None, sends=found[1].sends + 1)

    async def set_accepting(self, invitation_id: UUID, operation_id: UUID | None) -> None:
        found = self.t.invitations.get(invitation_id)
        if found is not None:
            self._set(found[1], found[0], accept_operation_id=operation_id)

    async def mark(
        self, invitation_id: UUID, status: InvitationStatus, *, user_id: UUID | None = None
    ) -> bool:
        found = self.t.invitations.get(invitation_id)
        if found is None or found[1].status != InvitationStatus.PENDING:
            return False
        changes: dict[str, Any] = {"status": status}
        if status == InvitationStatus.ACCEPTED:
            changes.update(accepted_user_id=user_id, accepted_at=self.now())
        elif status == InvitationStatus.REVOKED:
            changes.update(revoked_at=self.now())
        self._set(found[1], found[0], **changes)
        return True

    async def revoke_pending(self, organization_id: UUID) -> int:
        due = [
            r
            for _, r in self.t.invitations.values()
            if r.organization_id == organization_id and r.status == InvitationStatus.PENDING
        ]
        for record in due:
            self._set(record, None, status=InvitationStatus.REVOKED, revoked_at=self.now())
        return len(due)

    async def expire(self) -> list[InvitationRecord]:
        now = self.now()
        due = [
            (d, r)
            for d, r in self.t.invitations.values()
            if r.status == InvitationStatus.PENDING
            and r.expires_at <= now
            and r.accept_operation_id is None
        ]
        return [self._set(r, d, status=InvitationStatus.EXPIRED) for d, r in due]

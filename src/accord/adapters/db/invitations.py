"""SQL for invitations (the ``Invitations`` repository, domain/invitation_store.py)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import func, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.sql import row_values
from accord.adapters.db.tables import invitations
from accord.domain.invitation_store import InvitationRecord, NewInvitation
from accord.domain.model import InvitationStatus, Role

_COLUMNS = [c for c in invitations.c if c.name != "digest"]
_PENDING = invitations.c.status == InvitationStatus.PENDING
# Written into the SQL, not bound: uq_invitations_pending_email (``WHERE status = 'pending'``)
# then serves the seat count's generic plan too (see operations._OPEN).
_PENDING_LITERAL = invitations.c.status == literal_column("'pending'")
_PAST = invitations.c.expires_at <= func.now()


def _record(row: Any) -> InvitationRecord:
    values = dict(row._mapping)
    values["role"] = Role(values["role"])
    values["status"] = InvitationStatus(values["status"])
    values["permissions"] = tuple(values["permissions"])
    return InvitationRecord(**values)


def held_seats(organization_id: Any) -> Any:
    """Pending invitations holding a seat in the organization (an expired one only while its
    accept is under way), as a scalar subquery."""
    return (
        select(func.count())
        .select_from(invitations)
        .where(
            invitations.c.organization_id == organization_id,
            _PENDING_LITERAL,
            or_(~_PAST, invitations.c.accept_operation_id.is_not(None)),
        )
        .scalar_subquery()
    )


class PgInvitations:
    """``Invitations`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _one(self, statement: Any) -> InvitationRecord | None:
        row = (await self._conn.execute(statement)).first()
        return _record(row) if row else None

    async def insert(self, new: NewInvitation) -> InvitationRecord | None:
        values = {**row_values(new), "role": str(new.role), "permissions": list(new.permissions)}
        statement = (
            pg_insert(invitations)
            .values(**values)
            .on_conflict_do_nothing(
                index_elements=[invitations.c.organization_id, invitations.c.email],
                index_where=_PENDING,
            )
            .returning(*_COLUMNS)
        )
        return await self._one(statement)

    async def get(self, invitation_id: UUID, *, lock: bool = False) -> InvitationRecord | None:
        query = select(*_COLUMNS).where(invitations.c.id == invitation_id)
        return await self._one(query.with_for_update() if lock else query)

    async def pending_for(self, organization_id: UUID, email: str) -> InvitationRecord | None:
        query = select(*_COLUMNS).where(
            invitations.c.organization_id == organization_id,
            invitations.c.email == email,
            _PENDING,
        )
        return await self._one(query)

    async def by_digest(self, digest: str) -> InvitationRecord | None:
        return await self._one(select(*_COLUMNS).where(invitations.c.digest == digest))

    async def list(
        self,
        organization_id: UUID,
        *,
        status: InvitationStatus | None = None,
        after: UUID | None = None,
        limit: int = 50,
    ) -> list[InvitationRecord]:
        query = select(*_COLUMNS).where(invitations.c.organization_id == organization_id)
        if status == InvitationStatus.PENDING:
            query = query.where(_PENDING, ~_PAST)
        elif status == InvitationStatus.EXPIRED:
            query = query.where(
                or_(invitations.c.status == InvitationStatus.EXPIRED, _PENDING & _PAST)
            )
        elif status is not None:
            query = query.where(invitations.c.status == status)
        if after is not None:
            query = query.where(invitations.c.id > after)
        rows = await self._conn.execute(query.order_by(invitations.c.id).limit(limit))
        return [_record(row) for row in rows]

    async def issue_link(
        self, invitation_id: UUID, send: int, digest: str
    ) -> InvitationRecord | None:
        statement = (
            update(invitations)
            .where(invitations.c.id == invitation_id, _PENDING, invitations.c.sends == send)
            .values(digest=digest, updated_at=func.now())
            .returning(*_COLUMNS)
        )
        return await self._one(statement)

    async def resend(self, invitation_id: UUID) -> InvitationRecord | None:
        statement = (
            update(invitations)
            .where(invitations.c.id == invitation_id, _PENDING)
            .values(digest=None, sends=invitations.c.sends + 1, updated_at=func.now())
            .returning(*_COLUMNS)
        )
        return await self._one(statement)

    async def set_accepting(self, invitation_id: UUID, operation_id: UUID | None) -> None:
        await self._conn.execute(
            update(invitations)
            .where(invitations.c.id == invitation_id)
            .values(accept_operation_id=operation_id, updated_at=func.now())
        )

    async def mark(
        self, invitation_id: UUID, status: InvitationStatus, *, user_id: UUID | None = None
    ) -> bool:
        values: dict[str, Any] = {"status": str(status), "updated_at": func.now()}
        if status == InvitationStatus.ACCEPTED:
            values.update(accepted_user_id=user_id, accepted_at=func.now())
        elif status == InvitationStatus.REVOKED:
            values.update(revoked_at=func.now())
        result = await self._conn.execute(
            update(invitations).where(invitations.c.id == invitation_id, _PENDING).values(**values)
        )
        return bool(result.rowcount)

    async def revoke_pending(self, organization_id: UUID) -> int:
        result = await self._conn.execute(
            update(invitations)
            .where(invitations.c.organization_id == organization_id, _PENDING)
            .values(
                status=str(InvitationStatus.REVOKED),
                revoked_at=func.now(),
                digest=None,
                updated_at=func.now(),
            )
        )
        return result.rowcount

    async def expire(self) -> list[InvitationRecord]:
        result = await self._conn.execute(
            update(invitations)
            .where(_PENDING, _PAST, invitations.c.accept_operation_id.is_(None))
            .values(status=str(InvitationStatus.EXPIRED), updated_at=func.now())
            .returning(*_COLUMNS)
        )
        return [_record(row) for row in result]

"""SQL for organizations and memberships (the ``Organizations`` and ``Memberships``
repositories)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import Unpack

from accord.adapters.db.direct import Direct, mapping
from accord.adapters.db.invitations import held_seats
from accord.adapters.db.operations import open_claims
from accord.adapters.db.sql import row_values
from accord.adapters.db.tables import memberships, organizations, users
from accord.adapters.db.users import membership_record
from accord.domain.model import OrganizationKind, Role
from accord.domain.records import (
    MemberRecord,
    MembershipRecord,
    NewOrganizationRecord,
    OrganizationRecord,
    OrganizationSummary,
)
from accord.domain.store import OrganizationChanges


def organization_record(row: Any) -> OrganizationRecord:
    columns = mapping(row)
    values = {c.name: columns[c.name] for c in organizations.c}
    values["kind"] = OrganizationKind(values["kind"])
    return OrganizationRecord(**values)


_member_count = (
    select(func.count())
    .select_from(memberships)
    .where(memberships.c.organization_id == organizations.c.id)
    .scalar_subquery()
    .label("members")
)


# The hot path's statements, built once and run on psycopg directly (issue 12: ``Direct``).
_BY_ID = select(organizations).where(organizations.c.id == bindparam("w_id"))
_ORG = Direct(_BY_ID)
_ORG_LOCKED = Direct(_BY_ID.with_for_update())
# FOR NO KEY UPDATE: seat claims queue here, finalizes (FOR KEY SHARE) do not.
_ORG_SEATS_LOCK = Direct(_BY_ID.with_for_update(key_share=True))
# FOR KEY SHARE: what a membership's foreign key takes anyway; blocks only a delete.
_ORG_KEEP = Direct(_BY_ID.with_for_update(read=True, key_share=True))
_ORG_ID = bindparam("w_id")
# Pending invitations hold seats too: creates, member adds and invitations share one count.
_SEATS_TAKEN = Direct(
    select(
        select(func.count())
        .select_from(memberships)
        .where(memberships.c.organization_id == _ORG_ID)
        .scalar_subquery()
        + open_claims(_ORG_ID)
        + held_seats(_ORG_ID)
    )
)


class PgOrganizations:
    """``Organizations`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, organization_id: UUID, *, lock: bool = False) -> OrganizationRecord | None:
        query = _ORG_LOCKED if lock else _ORG
        row = await query.first(self._conn, {"w_id": organization_id})
        return organization_record(row) if row else None

    async def lock_many(self, ids: Sequence[UUID]) -> dict[UUID, OrganizationRecord]:
        query = (
            select(organizations)
            .where(organizations.c.id.in_(list(ids)))
            .order_by(organizations.c.id)
            .with_for_update()
        )
        return {row.id: organization_record(row) for row in await self._conn.execute(query)}

    async def lock_seats(self, organization_id: UUID) -> tuple[OrganizationRecord, int] | None:
        params = {"w_id": organization_id}
        row = await _ORG_SEATS_LOCK.first(self._conn, params)
        if row is None:
            return None
        # A statement of its own, so that its snapshot is taken once the lock is held and sees
        # every claim committed before; both counts in that one snapshot, so a finalize that
        # turns a claim into a membership meanwhile is seen whole or not at all.
        taken = await _SEATS_TAKEN.scalar(self._conn, params)
        return organization_record(row), taken

    async def keep(self, organization_id: UUID) -> OrganizationRecord | None:
        row = await _ORG_KEEP.first(self._conn, {"w_id": organization_id})
        return organization_record(row) if row else None

    async def by_slug(self, slug: str) -> OrganizationRecord | None:
        query = select(organizations).where(organizations.c.slug == slug)
        row = (await self._conn.execute(query)).first()
        return organization_record(row) if row else None

    async def personal_of(self, owner_id: UUID) -> OrganizationRecord | None:
        query = select(organizations).where(
            organizations.c.owner_user_id == owner_id,
            organizations.c.kind == OrganizationKind.PERSONAL,
        )
        row = (await self._conn.execute(query)).first()
        return organization_record(row) if row else None

    async def insert(self, new: NewOrganizationRecord) -> OrganizationRecord | None:
        statement = (
            pg_insert(organizations)
            .values(**row_values(new))
            .on_conflict_do_nothing()
            .returning(*organizations.c)
        )
        row = (await self._conn.execute(statement)).first()
        return organization_record(row) if row else None

    async def update_settings(self, organization_id: UUID, settings: dict[str, Any]) -> None:
        await self._conn.execute(
            update(organizations)
            .where(organizations.c.id == organization_id)
            .values(settings=settings, version=organizations.c.version + 1, updated_at=func.now())
        )

    async def update(
        self, organization_id: UUID, **changes: Unpack[OrganizationChanges]
    ) -> OrganizationRecord | None:
        statement = (
            update(organizations)
            .where(organizations.c.id == organization_id)
            .values(**changes, version=organizations.c.version + 1, updated_at=func.now())
            .returning(*organizations.c)
        )
        row = (await self._conn.execute(statement)).first()
        return organization_record(row) if row else None

    async def delete(self, organization_id: UUID) -> None:
        await self._conn.execute(delete(organizations).where(organizations.c.id == organization_id))

    async def summary(self, organization_id: UUID) -> OrganizationSummary | None:
        found = await self._summaries(organizations.c.id == organization_id)
        return found[0] if found else None

    async def summaries(self, ids: Sequence[UUID] | None = None) -> list[OrganizationSummary]:
        condition = organizations.c.id.in_(list(ids)) if ids is not None else None
        return await self._summaries(condition)

    async def _summaries(self, condition: Any) -> list[OrganizationSummary]:
        query = select(organizations, _member_count).order_by(organizations.c.slug)
        if condition is not None:
            query = query.where(condition)
        return [
            OrganizationSummary(organization_record(row), row.members)
            for row in await self._conn.execute(query)
        ]


_MEMBERSHIP = pg_insert(memberships)
_PUT_MEMBERSHIP = Direct(
    _MEMBERSHIP.on_conflict_do_update(
        index_elements=[memberships.c.user_id, memberships.c.organization_id],
        set_={
            "role": _MEMBERSHIP.excluded.role,
            "permissions": _MEMBERSHIP.excluded.permissions,
        },
    )
)


class PgMemberships:
    """``Memberships`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def put(
        self, *, user_id: UUID, organization_id: UUID, role: Role, permissions: Sequence[str]
    ) -> None:
        values = {
            "user_id": user_id,
            "organization_id": organization_id,
            "role": str(role),
            "permissions": list(permissions),
        }
        await _PUT_MEMBERSHIP.run(self._conn, values)

    async def remove_all(self, user_id: UUID) -> None:
        await self._conn.execute(delete(memberships).where(memberships.c.user_id == user_id))

    async def remove(self, user_id: UUID, organization_id: UUID) -> bool:
        result = await self._conn.execute(
            delete(memberships).where(
                memberships.c.user_id == user_id,
                memberships.c.organization_id == organization_id,
            )
        )
        return bool(result.rowcount)

    async def organizations_of(self, user_id: UUID) -> list[UUID]:
        query = select(memberships.c.organization_id).where(memberships.c.user_id == user_id)
        return list((await self._conn.execute(query)).scalars())

    async def count(self, organization_id: UUID) -> int:
        query = (
            select(func.count())
            .select_from(memberships)
            .where(memberships.c.organization_id == organization_id)
        )
        return (await self._conn.execute(query)).scalar_one()

    async def lock_leavers(self, organization_id: UUID) -> list[UUID]:
        here = select(memberships.c.user_id).where(memberships.c.organization_id == organization_id)
        # Locked first, counted after: a membership added elsewhere before the lock is seen by
        # the second statement (read committed), and none can be added while it is held (its
        # foreign key check waits for the row lock).
        await self._conn.execute(
            select(users.c.id).where(users.c.id.in_(here)).order_by(users.c.id).with_for_update()
        )
        elsewhere = (
            select(memberships.c.user_id)
            .where(memberships.c.organization_id != organization_id)
            .where(memberships.c.user_id == users.c.id)
            .exists()
        )
        query = select(users.c.id).where(users.c.id.in_(here), ~elsewhere).order_by(users.c.id)
        return list((await self._conn.execute(query)).scalars())

    async def members(self, organization_id: UUID) -> dict[UUID, MemberRecord]:
        query = (
            select(memberships, users.c.email)
            .join(users, users.c.id == memberships.c.user_id)
            .where(memberships.c.organization_id == organization_id)
        )
        return {
            row.user_id: MemberRecord(membership_record(row), row.email)
            for row in await self._conn.execute(query)
        }

    async def get(self, user_id: UUID, organization_id: UUID) -> MembershipRecord | None:
        query = select(memberships).where(
            memberships.c.user_id == user_id, memberships.c.organization_id == organization_id
        )
        row = (await self._conn.execute(query)).first()
        return membership_record(row) if row else None

    async def page(
        self, organization_id: UUID, *, after: UUID | None = None, limit: int = 50
    ) -> list[MemberRecord]:
        query = (
            select(memberships, users.c.email)
            .join(users, users.c.id == memberships.c.user_id)
            .where(memberships.c.organization_id == organization_id)
            .order_by(memberships.c.user_id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(memberships.c.user_id > after)
        return [
            MemberRecord(membership_record(row), row.email)
            for row in await self._conn.execute(query)
        ]

    async def count_admins(self, organization_id: UUID) -> int:
        query = (
            select(func.count())
            .select_from(memberships)
            .where(
                memberships.c.organization_id == organization_id,
                memberships.c.role == str(Role.ORG_ADMIN),
            )
        )
        return (await self._conn.execute(query)).scalar_one()

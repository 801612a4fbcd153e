"""SQL for the SCIM clients' users (domain/scim_store.py)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.tables import memberships, scim_users, users
from accord.domain.model import UserStatus
from accord.domain.scim_store import ScimUserRecord, ScimUserWrite, user_name_key


def _record(row: Any) -> ScimUserRecord:
    return ScimUserRecord(
        id=row.id,
        organization_id=row.organization_id,
        user_id=row.user_id,
        user_name=row.user_name,
        external_id=row.external_id,
        creation_key=row.creation_key,
        attributes=dict(row.attributes or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _columns(write: ScimUserWrite) -> dict[str, Any]:
    return {
        "user_name": write.user_name,
        "user_name_key": user_name_key(write.user_name),
        "external_id": write.external_id,
        "attributes": write.attributes,
    }


class PgScimUsers:
    """``ScimUsers`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def claim(
        self, *, row_id: UUID, organization_id: UUID, creation_key: str, write: ScimUserWrite
    ) -> ScimUserRecord | None:
        statement = (
            insert(scim_users)
            .values(
                id=row_id,
                organization_id=organization_id,
                creation_key=creation_key,
                **_columns(write),
            )
            .on_conflict_do_nothing(index_elements=["organization_id", "user_name_key"])
            .returning(*scim_users.c)
        )
        row = (await self._conn.execute(statement)).first()
        return _record(row) if row else None

    async def by_user_name(self, organization_id: UUID, user_name: str) -> ScimUserRecord | None:
        query = select(scim_users).where(
            scim_users.c.organization_id == organization_id,
            scim_users.c.user_name_key == user_name_key(user_name),
        )
        row = (await self._conn.execute(query)).first()
        return _record(row) if row else None

    async def by_user(self, organization_id: UUID, user_id: UUID) -> ScimUserRecord | None:
        query = select(scim_users).where(
            scim_users.c.organization_id == organization_id, scim_users.c.user_id == user_id
        )
        row = (await self._conn.execute(query)).first()
        return _record(row) if row else None

    async def bind(self, row_id: UUID, user_id: UUID) -> None:
        await self._conn.execute(
            update(scim_users)
            .where(scim_users.c.id == row_id)
            .values(user_id=user_id, updated_at=func.now())
        )

    async def replace(self, row_id: UUID, write: ScimUserWrite) -> bool:
        # The unique index answers a concurrent rename too; ON CONFLICT is not available for
        # an UPDATE, so the free name is checked under the row's organization first.
        key = user_name_key(write.user_name)
        taken = select(scim_users.c.id).where(
            scim_users.c.user_name_key == key,
            scim_users.c.id != row_id,
            scim_users.c.organization_id
            == select(scim_users.c.organization_id)
            .where(scim_users.c.id == row_id)
            .scalar_subquery(),
        )
        if (await self._conn.execute(taken)).first() is not None:
            return False
        await self._conn.execute(
            update(scim_users)
            .where(scim_users.c.id == row_id)
            .values(**_columns(write), updated_at=func.now())
        )
        return True

    async def delete(self, row_id: UUID) -> None:
        await self._conn.execute(delete(scim_users).where(scim_users.c.id == row_id))

    async def members(self, organization_id: UUID) -> list[ScimUserRecord]:
        query = (
            select(scim_users)
            .join(users, users.c.id == scim_users.c.user_id)
            .join(
                memberships,
                (memberships.c.user_id == scim_users.c.user_id)
                & (memberships.c.organization_id == scim_users.c.organization_id),
            )
            .where(
                scim_users.c.organization_id == organization_id,
                users.c.status != UserStatus.DISABLED,
            )
            .order_by(scim_users.c.created_at, scim_users.c.id)
        )
        return [_record(row) for row in await self._conn.execute(query)]

"""SQL for the SCIM clients' users (domain/scim_store.py)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.tables import (
    memberships,
    scim_group_grants,
    scim_group_members,
    scim_groups,
    scim_users,
    users,
)
from accord.domain.model import Role, UserStatus
from accord.domain.scim_store import (
    ScimGroupGrant,
    ScimGroupRecord,
    ScimGroupWrite,
    ScimUserRecord,
    ScimUserWrite,
    display_name_key,
    user_name_key,
)


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


# -- groups --------------------------------------------------------------------------------------


class PgScimGroups:
    """``ScimGroups`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _record(self, row: Any) -> ScimGroupRecord:
        query = (
            select(scim_group_members.c.user_id)
            .where(scim_group_members.c.group_id == row.id)
            .order_by(scim_group_members.c.position)
        )
        members = tuple((await self._conn.execute(query)).scalars())
        return ScimGroupRecord(
            id=row.id,
            organization_id=row.organization_id,
            display_name=row.display_name,
            external_id=row.external_id,
            members=members,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    async def _set_members(self, group_id: UUID, members: tuple[UUID, ...]) -> None:
        await self._conn.execute(
            delete(scim_group_members).where(scim_group_members.c.group_id == group_id)
        )
        unique = list(dict.fromkeys(members))
        if unique:
            await self._conn.execute(
                insert(scim_group_members),
                [
                    {"group_id": group_id, "user_id": uid, "position": i}
                    for i, uid in enumerate(unique)
                ],
            )

    async def create(
        self, *, group_id: UUID, organization_id: UUID, write: ScimGroupWrite
    ) -> ScimGroupRecord | None:
        statement = (
            insert(scim_groups)
            .values(
                id=group_id,
                organization_id=organization_id,
                display_name=write.display_name,
                display_name_key=display_name_key(write.display_name),
                external_id=write.external_id,
            )
            .on_conflict_do_nothing(index_elements=["organization_id", "display_name_key"])
            .returning(*scim_groups.c)
        )
        row = (await self._conn.execute(statement)).first()
        if row is None:
            return None
        await self._set_members(group_id, write.members)
        return await self._record(row)

    async def _one(self, *where: Any) -> ScimGroupRecord | None:
        row = (await self._conn.execute(select(scim_groups).where(*where))).first()
        return await self._record(row) if row else None

    async def get(self, organization_id: UUID, group_id: UUID) -> ScimGroupRecord | None:
        return await self._one(
            scim_groups.c.organization_id == organization_id, scim_groups.c.id == group_id
        )

    async def by_display_name(
        self, organization_id: UUID, display_name: str
    ) -> ScimGroupRecord | None:
        return await self._one(
            scim_groups.c.organization_id == organization_id,
            scim_groups.c.display_name_key == display_name_key(display_name),
        )

    async def list(self, organization_id: UUID) -> list[ScimGroupRecord]:
        query = (
            select(scim_groups)
            .where(scim_groups.c.organization_id == organization_id)
            .order_by(scim_groups.c.created_at, scim_groups.c.id)
        )
        return [await self._record(row) for row in (await self._conn.execute(query)).all()]

    async def replace(self, group_id: UUID, write: ScimGroupWrite) -> bool:
        key = display_name_key(write.display_name)
        taken = select(scim_groups.c.id).where(
            scim_groups.c.display_name_key == key,
            scim_groups.c.id != group_id,
            scim_groups.c.organization_id
            == select(scim_groups.c.organization_id)
            .where(scim_groups.c.id == group_id)
            .scalar_subquery(),
        )
        if (await self._conn.execute(taken)).first() is not None:
            return False
        await self._conn.execute(
            update(scim_groups)
            .where(scim_groups.c.id == group_id)
            .values(
                display_name=write.display_name,
                display_name_key=key,
                external_id=write.external_id,
                updated_at=func.now(),
            )
        )
        await self._set_members(group_id, write.members)
        return True

    async def delete(self, group_id: UUID) -> None:
        await self._conn.execute(delete(scim_groups).where(scim_groups.c.id == group_id))

    async def drop_member(self, organization_id: UUID, user_id: UUID) -> None:
        groups = select(scim_groups.c.id).where(scim_groups.c.organization_id == organization_id)
        await self._conn.execute(
            delete(scim_group_members).where(
                scim_group_members.c.user_id == user_id,
                scim_group_members.c.group_id.in_(groups),
            )
        )

    async def grants(self, organization_id: UUID) -> dict[str, ScimGroupGrant]:
        query = select(scim_group_grants).where(
            scim_group_grants.c.organization_id == organization_id
        )
        return {
            row.display_name_key: ScimGroupGrant(
                organization_id=row.organization_id,
                display_name=row.display_name,
                role=Role(row.role),
                permissions=tuple(row.permissions),
            )
            for row in await self._conn.execute(query)
        }

    async def put_grant(self, grant: ScimGroupGrant) -> None:
        values = {
            "display_name": grant.display_name,
            "role": grant.role.value,
            "permissions": list(grant.permissions),
        }
        statement = insert(scim_group_grants).values(
            organization_id=grant.organization_id,
            display_name_key=display_name_key(grant.display_name),
            **values,
        )
        await self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=["organization_id", "display_name_key"],
                set_={**values, "updated_at": func.now()},
            )
        )

    async def remove_grant(self, organization_id: UUID, display_name: str) -> bool:
        result = await self._conn.execute(
            delete(scim_group_grants).where(
                scim_group_grants.c.organization_id == organization_id,
                scim_group_grants.c.display_name_key == display_name_key(display_name),
            )
        )
        return bool(result.rowcount)

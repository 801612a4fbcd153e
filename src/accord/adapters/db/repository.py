"""accord's SQL, in one place: functions of a connection that is already in a transaction."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.tables import idp_links, memberships, organizations, users


def _plain(row: RowMapping) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, UUID) else v) for k, v in row.items()}


_member_count = (
    select(func.count())
    .select_from(memberships)
    .where(memberships.c.organization_id == organizations.c.id)
    .scalar_subquery()
    .label("members")
)


async def list_organizations(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(select(organizations, _member_count).order_by(organizations.c.slug))
    return [_plain(r) for r in rows.mappings()]


async def get_organization(conn: AsyncConnection, org_id: UUID) -> dict[str, Any] | None:
    row = (
        (
            await conn.execute(
                select(organizations, _member_count).where(organizations.c.id == org_id)
            )
        )
        .mappings()
        .first()
    )
    return _plain(row) if row else None


_memberships_json = (
    select(
        func.coalesce(
            func.jsonb_agg(
                func.jsonb_build_object(
                    "organization_id",
                    memberships.c.organization_id,
                    "role",
                    memberships.c.role,
                    "permissions",
                    memberships.c.permissions,
                )
            ),
            func.jsonb_build_array(),
        )
    )
    .where(memberships.c.user_id == users.c.id)
    .scalar_subquery()
    .label("organizations")
)

_user_columns = [
    users.c.id,
    users.c.email,
    users.c.full_name,
    users.c.status,
    users.c.is_platform_admin,
    users.c.require_password_change,
    users.c.created_by,
    users.c.created_at,
    users.c.updated_at,
    _memberships_json,
]


async def list_users(
    conn: AsyncConnection,
    *,
    organization_id: UUID | None = None,
    email: str | None = None,
    after: UUID | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    query = select(*_user_columns).order_by(users.c.id)
    if organization_id is not None:
        query = query.where(
            select(memberships.c.user_id)
            .where(memberships.c.user_id == users.c.id)
            .where(memberships.c.organization_id == organization_id)
            .exists()
        )
    if email is not None:
        query = query.where(users.c.email == email)
    if after is not None:
        query = query.where(users.c.id > after)
    if limit is not None:
        query = query.limit(limit)
    return [_plain(r) for r in (await conn.execute(query)).mappings()]


async def get_user(conn: AsyncConnection, user_id: UUID) -> dict[str, Any] | None:
    row = (
        (await conn.execute(select(*_user_columns).where(users.c.id == user_id))).mappings().first()
    )
    return _plain(row) if row else None


async def get_link(conn: AsyncConnection, user_id: UUID, provider: str) -> RowMapping | None:
    query = select(idp_links).where(
        idp_links.c.user_id == user_id, idp_links.c.provider == provider
    )
    return (await conn.execute(query)).mappings().first()

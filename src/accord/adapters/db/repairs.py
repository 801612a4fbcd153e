"""SQL for repairing drift and merging organizations: functions of a connection in a transaction.

Every repair re-checks, under a row lock in the transaction that changes it, that no open
operation owns the user or the e-mail (``open_operation_touching``); ``hold_email`` makes the
e-mail's unique index the lock against a concurrent claim, exactly as the engine's claim does.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.tables import api_tokens, memberships, operations, organizations, users
from accord.domain.model import OperationKind, OperationState, RecoveryPoint, UserStatus

PLACEHOLDER_NAME = "(held by reconcile)"


async def open_operation_touching(
    conn: AsyncConnection, *, user_id: UUID | str | None, email: str | None
) -> UUID | None:
    """An open operation whose subject is this user or this e-mail, if any."""
    conditions = []
    subject = _uuid_or_none(user_id)
    if subject is not None:
        conditions.append(operations.c.user_id == subject)
    if email:
        conditions.append(operations.c.request["email"].astext == email)
        conditions.append(operations.c.flow_state["email"].astext == email)
    if not conditions:
        return None
    query = (
        select(operations.c.id)
        .where(operations.c.state == OperationState.OPEN, or_(*conditions))
        .limit(1)
    )
    return (await conn.execute(query)).scalar_one_or_none()


def _uuid_or_none(value: UUID | str | None) -> UUID | None:
    try:
        return UUID(str(value)) if value is not None else None
    except ValueError:
        return None  # an IdP's stamp that is not one of accord's ids


async def hold_email(conn: AsyncConnection, email: str) -> tuple[bool, UUID | None]:
    """Keep claims for ``email`` waiting until this transaction ends.

    Returns (held, placeholder): held is False when a live user has the e-mail. A deprovisioned
    row is locked (a claim would reclaim it); otherwise a placeholder row takes the unique
    index, to be removed with ``release_email`` before commit.
    """
    query = select(users.c.id, users.c.status).where(users.c.email == email).with_for_update()
    row = (await conn.execute(query)).first()
    if row is not None:
        return row.status == UserStatus.DISABLED, None
    placeholder = (
        await conn.execute(
            pg_insert(users)
            .values(
                id=uuid4(),
                email=email,
                full_name=PLACEHOLDER_NAME,
                status=UserStatus.PROVISIONING,
                created_by="reconcile",
            )
            .on_conflict_do_nothing(index_elements=[users.c.email])
            .returning(users.c.id)
        )
    ).scalar_one_or_none()
    return placeholder is not None, placeholder


async def release_email(conn: AsyncConnection, placeholder: UUID | None) -> None:
    """Remove the placeholder of ``hold_email`` (the waiting claims proceed at commit)."""
    if placeholder is not None:
        await conn.execute(delete(users).where(users.c.id == placeholder))


async def insert_adopted_user(
    conn: AsyncConnection, *, email: str, full_name: str, created_by: str
) -> UUID | None:
    """A new active row for an IdP user being adopted; None if the e-mail has a row."""
    statement = (
        pg_insert(users)
        .values(
            id=uuid4(),
            email=email,
            full_name=full_name,
            status=UserStatus.ACTIVE,
            created_by=created_by,
        )
        .on_conflict_do_nothing(index_elements=[users.c.email])
        .returning(users.c.id)
    )
    return (await conn.execute(statement)).scalar_one_or_none()


# -- cleanup-orphans ------------------------------------------------------------------------------

# Rows never finished: left in `provisioning` with no operation running, or pending/active but
# never linked to an identity of this provider.
UNFINISHED_ROWS = """
SELECT u.id::text AS user_id, u.email, u.status, u.created_at
FROM users u
WHERE (CAST(:email AS text) IS NULL OR u.email = :email)
  AND (u.status = 'provisioning'
       OR (u.status IN ('pending', 'active') AND NOT EXISTS (
           SELECT 1 FROM idp_links l WHERE l.user_id = u.id AND l.provider = :provider)))
  AND NOT EXISTS (SELECT 1 FROM operations o WHERE o.state = 'open' AND o.user_id = u.id)
ORDER BY u.email
"""


# -- organizations (merge, import) ---------------------------------------------------------------


async def organization_by_slug(conn: AsyncConnection, slug: str) -> RowMapping | None:
    query = select(organizations).where(organizations.c.slug == slug)
    return (await conn.execute(query)).mappings().first()


async def lock_organizations(conn: AsyncConnection, ids: list[UUID]) -> dict[UUID, RowMapping]:
    """Lock the organizations in id order (two merges never deadlock); the ones that exist."""
    query = (
        select(organizations)
        .where(organizations.c.id.in_(ids))
        .order_by(organizations.c.id)
        .with_for_update()
    )
    return {row["id"]: row for row in (await conn.execute(query)).mappings()}


async def members(conn: AsyncConnection, org_id: UUID) -> dict[UUID, RowMapping]:
    """The organization's memberships by user id, each with the member's e-mail."""
    query = (
        select(memberships, users.c.email)
        .join(users, users.c.id == memberships.c.user_id)
        .where(memberships.c.organization_id == org_id)
    )
    return {row["user_id"]: row for row in (await conn.execute(query)).mappings()}


async def open_claims(conn: AsyncConnection, org_id: UUID) -> int:
    """Open operations that will add a member to ``org_id`` (as G5 counts them)."""
    query = (
        select(func.count())
        .select_from(operations)
        .where(
            operations.c.organization_id == org_id,
            operations.c.state == OperationState.OPEN,
            operations.c.kind == OperationKind.CREATE_USER,
            operations.c.recovery_point != RecoveryPoint.COMPENSATING,
        )
    )
    return (await conn.execute(query)).scalar_one()


async def live_tokens(conn: AsyncConnection, org_id: UUID) -> int:
    query = (
        select(func.count())
        .select_from(api_tokens)
        .where(api_tokens.c.organization_id == org_id, api_tokens.c.revoked_at.is_(None))
    )
    return (await conn.execute(query)).scalar_one()


async def put_membership(
    conn: AsyncConnection, *, user_id: UUID, org_id: UUID, role: str, permissions: list[str]
) -> None:
    await conn.execute(
        pg_insert(memberships)
        .values(user_id=user_id, organization_id=org_id, role=role, permissions=permissions)
        .on_conflict_do_update(
            index_elements=[memberships.c.user_id, memberships.c.organization_id],
            set_={"role": role, "permissions": permissions},
        )
    )


async def update_organization(conn: AsyncConnection, org_id: UUID, **values: Any) -> None:
    await conn.execute(
        update(organizations)
        .where(organizations.c.id == org_id)
        .values(version=organizations.c.version + 1, updated_at=func.now(), **values)
    )


async def delete_organization(conn: AsyncConnection, org_id: UUID) -> None:
    """Remove an organization; its memberships and API tokens go with it (foreign keys)."""
    await conn.execute(delete(organizations).where(organizations.c.id == org_id))

"""accord's SQL, in one place: functions of a connection that is already in a transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.tables import (
    api_tokens,
    audit_events,
    idp_links,
    memberships,
    one_time_tokens,
    operations,
    organizations,
    outbox,
    users,
)
from accord.domain.model import OperationState, UserStatus


def _json_ready(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _plain(row: RowMapping) -> dict[str, Any]:
    """A row as a JSON-ready dict (ids and timestamps as text): results are stored as JSONB."""
    return {k: _json_ready(v) for k, v in row.items()}


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


# -- writes used by the flows -----------------------------------------------------------------


async def claim_user_row(
    conn: AsyncConnection, *, user_id: UUID, email: str, full_name: str, created_by: str
) -> UUID | None:
    """Insert a ``provisioning`` row for ``email``, or reclaim a deprovisioned (disabled) one.

    Returns the row's id, or None when a live user has this e-mail. The unique e-mail index is
    the lock: of concurrent claims for one e-mail, exactly one gets a row.
    """
    statement = (
        pg_insert(users)
        .values(
            id=user_id,
            email=email,
            full_name=full_name,
            status=UserStatus.PROVISIONING,
            created_by=created_by,
        )
        .on_conflict_do_update(
            index_elements=[users.c.email],
            set_={
                "status": UserStatus.PROVISIONING,
                "full_name": full_name,
                "version": users.c.version + 1,
                "updated_at": func.now(),
            },
            where=users.c.status == UserStatus.DISABLED,
        )
        .returning(users.c.id)
    )
    return (await conn.execute(statement)).scalar_one_or_none()


async def lock_organization(conn: AsyncConnection, org_id: UUID) -> RowMapping | None:
    query = select(organizations).where(organizations.c.id == org_id).with_for_update()
    return (await conn.execute(query)).mappings().first()


async def count_members(conn: AsyncConnection, org_id: UUID) -> int:
    query = (
        select(func.count()).select_from(memberships).where(memberships.c.organization_id == org_id)
    )
    return (await conn.execute(query)).scalar_one()


async def user_row(
    conn: AsyncConnection, user_id: UUID, *, lock: bool = False
) -> RowMapping | None:
    query = select(users).where(users.c.id == user_id)
    if lock:
        query = query.with_for_update()
    return (await conn.execute(query)).mappings().first()


async def user_row_by_email(conn: AsyncConnection, email: str) -> RowMapping | None:
    return (await conn.execute(select(users).where(users.c.email == email))).mappings().first()


async def set_user(conn: AsyncConnection, user_id: UUID, **values: Any) -> None:
    await conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(version=users.c.version + 1, updated_at=func.now(), **values)
    )


async def delete_user_row(conn: AsyncConnection, user_id: UUID) -> None:
    await conn.execute(delete(users).where(users.c.id == user_id))


async def link_identity(
    conn: AsyncConnection, *, user_id: UUID, provider: str, remote_id: str, created_by_accord: bool
) -> None:
    """Link a user to its IdP identity (replacing an older link to the same provider)."""
    await conn.execute(
        delete(idp_links).where(idp_links.c.user_id == user_id, idp_links.c.provider == provider)
    )
    await conn.execute(
        insert(idp_links).values(
            user_id=user_id,
            provider=provider,
            remote_id=remote_id,
            created_by_accord=created_by_accord,
        )
    )


async def unlink_identities(conn: AsyncConnection, user_id: UUID) -> None:
    await conn.execute(delete(idp_links).where(idp_links.c.user_id == user_id))


async def add_membership(
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


async def remove_memberships(conn: AsyncConnection, user_id: UUID) -> None:
    await conn.execute(delete(memberships).where(memberships.c.user_id == user_id))


async def membership_organizations(conn: AsyncConnection, user_id: UUID) -> list[UUID]:
    query = select(memberships.c.organization_id).where(memberships.c.user_id == user_id)
    return list((await conn.execute(query)).scalars())


async def insert_organization(conn: AsyncConnection, **values: Any) -> dict[str, Any] | None:
    """Insert an organization; None if its slug (or, for personal ones, its owner) is taken."""
    row = (
        (
            await conn.execute(
                pg_insert(organizations)
                .values(**values)
                .on_conflict_do_nothing()
                .returning(organizations)
            )
        )
        .mappings()
        .first()
    )
    return _plain(row) if row else None


async def personal_organization(conn: AsyncConnection, owner_id: UUID) -> dict[str, Any] | None:
    query = select(organizations).where(
        organizations.c.owner_user_id == owner_id, organizations.c.kind == "personal"
    )
    row = (await conn.execute(query)).mappings().first()
    return _plain(row) if row else None


async def record_audit(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    subject_user_id: UUID | None = None,
    subject_email: str | None = None,
    organization_id: UUID | None = None,
    operation_id: UUID | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        insert(audit_events).values(
            actor=actor,
            action=action,
            subject_user_id=subject_user_id,
            subject_email=subject_email,
            organization_id=organization_id,
            operation_id=operation_id,
            data=data or {},
        )
    )


async def enqueue_mail(
    conn: AsyncConnection, *, kind: str, dedupe_key: str, recipient: str, payload: dict[str, Any]
) -> None:
    """Queue a message for after commit; a second message with the same key is dropped."""
    await conn.execute(
        pg_insert(outbox)
        .values(kind=kind, dedupe_key=dedupe_key, recipient=recipient, payload=payload)
        .on_conflict_do_nothing(index_elements=[outbox.c.dedupe_key])
    )


async def delete_one_time_tokens(conn: AsyncConnection, user_id: UUID) -> None:
    await conn.execute(delete(one_time_tokens).where(one_time_tokens.c.user_id == user_id))


async def delete_unsent_mail(conn: AsyncConnection, recipient: str) -> None:
    await conn.execute(
        delete(outbox).where(outbox.c.recipient == recipient, outbox.c.sent_at.is_(None))
    )


async def user_linked_to(conn: AsyncConnection, provider: str, remote_id: str) -> UUID | None:
    query = select(idp_links.c.user_id).where(
        idp_links.c.provider == provider, idp_links.c.remote_id == remote_id
    )
    return (await conn.execute(query)).scalar_one_or_none()


# -- API tokens, organization lists and health (the HTTP API) -------------------------------------


async def insert_api_token(conn: AsyncConnection, **values: Any) -> dict[str, Any]:
    """Insert an API token row (its digest, never the token) and return it without the digest."""
    row = (
        (await conn.execute(insert(api_tokens).values(**values).returning(api_tokens)))
        .mappings()
        .one()
    )
    return {k: v for k, v in _plain(row).items() if k != "digest"}


async def live_api_token(conn: AsyncConnection, digest: str) -> RowMapping | None:
    """The unrevoked API token stored under ``digest``, if any."""
    query = select(api_tokens).where(
        api_tokens.c.digest == digest, api_tokens.c.revoked_at.is_(None)
    )
    return (await conn.execute(query)).mappings().first()


async def revoke_api_token(conn: AsyncConnection, token_id: UUID) -> bool:
    """Mark a token revoked (once; a second revocation keeps the first time). False if unknown."""
    await conn.execute(
        update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    query = select(api_tokens.c.id).where(api_tokens.c.id == token_id)
    return (await conn.execute(query)).first() is not None


async def list_organizations_by_id(
    conn: AsyncConnection, org_ids: list[UUID]
) -> list[dict[str, Any]]:
    """The organizations with these ids, ordered by slug, with their member counts."""
    query = (
        select(organizations, _member_count)
        .where(organizations.c.id.in_(org_ids))
        .order_by(organizations.c.slug)
    )
    return [_plain(r) for r in (await conn.execute(query)).mappings()]


async def open_operations_by_kind(conn: AsyncConnection) -> dict[str, int]:
    """How many operations are open (not finished), per kind."""
    query = (
        select(operations.c.kind, func.count())
        .where(operations.c.state == OperationState.OPEN)
        .group_by(operations.c.kind)
    )
    return {kind: count for kind, count in (await conn.execute(query)).all()}


async def ping(conn: AsyncConnection) -> None:
    """Prove the database answers."""
    await conn.execute(select(1))

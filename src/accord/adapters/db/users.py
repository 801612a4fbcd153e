"""SQL for users and their IdP links (the ``Users`` and ``Links`` repositories)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    any_,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from typing_extensions import Unpack

from accord.adapters.db.direct import Direct, mapping
from accord.adapters.db.tables import idp_links, memberships, users
from accord.domain import errors
from accord.domain.model import Role, UserStatus
from accord.domain.records import LinkRecord, MembershipRecord, UserRecord, UserView
from accord.domain.store import LINKED_ELSEWHERE, UserChanges

PLACEHOLDER_NAME = "(held by reconcile)"
RESERVED_NAME = "(reserved for an e-mail change)"
# A row that only holds an address's unique index (``hold_email``, ``reserve_email``) is no
# one: the listings and views leave it out.
IS_PLACEHOLDER = (users.c.status == UserStatus.PROVISIONING) & (
    (users.c.full_name == PLACEHOLDER_NAME) | (users.c.full_name == RESERVED_NAME)
)


def user_record(row: Any) -> UserRecord:
    values = dict(mapping(row))
    values["status"] = UserStatus(values["status"])
    return UserRecord(**values)


def membership_record(row: Any) -> MembershipRecord:
    return MembershipRecord(
        user_id=row.user_id,
        organization_id=row.organization_id,
        role=Role(row.role),
        permissions=tuple(row.permissions),
    )


# A user's memberships as one JSON array, oldest first.
_held = (
    select(
        func.coalesce(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_object(
                        "organization_id",
                        memberships.c.organization_id,
                        "role",
                        memberships.c.role,
                        "permissions",
                        memberships.c.permissions,
                    ),
                    memberships.c.created_at,
                    memberships.c.organization_id,
                )
            ),
            literal_column("'[]'::json"),
        )
    )
    .where(memberships.c.user_id == users.c.id)
    .scalar_subquery()
    .label("held")
)


def _view(row: dict[str, Any]) -> UserView:
    """A user and its memberships from a row of ``users`` with ``_held``'s ``held``."""
    held = row.pop("held")
    return UserView(user_record(row), tuple(_membership(row["id"], held)))


def _membership(user_id: UUID, held: list[dict[str, Any]]) -> Iterator[MembershipRecord]:
    for m in held:
        yield MembershipRecord(
            user_id=user_id,
            organization_id=UUID(m["organization_id"]),
            role=Role(m["role"]),
            permissions=tuple(m["permissions"]),
        )


# The hot path's statements, built once and run on psycopg directly (issue 12: ``Direct``).
# WHERE parameters are named ``w_*``, never a column's name (that is the SET clause's).
_INSERT_IF_FREE = Direct(
    pg_insert(users).on_conflict_do_nothing(index_elements=[users.c.email]).returning(users.c.id)
)
_UPDATE = Direct(
    update(users)
    .where(users.c.id == bindparam("w_id"))
    .values(version=users.c.version + 1, updated_at=func.now())
)
# ``_UPDATE`` and ``_VIEWS`` in one round trip (a finalize's user document): RETURNING has the
# row as changed, and its subquery reads the statement's snapshot, which holds what this
# transaction's earlier statements wrote (the membership just put).
_UPDATE_VIEW = Direct(
    update(users)
    .where(users.c.id == bindparam("w_id"))
    .values(version=users.c.version + 1, updated_at=func.now())
    .returning(*users.c, _held, IS_PLACEHOLDER.label("placeholder"))
)
# The ids as one ``uuid[]`` parameter, however many (set-wise creation reads 500 at once): an
# index lookup per element in any plan, and one plan for every number of ids.
_VIEWS = Direct(
    select(users, _held).where(
        users.c.id == any_(bindparam("w_ids", type_=ARRAY(PG_UUID(as_uuid=True)))),
        ~IS_PLACEHOLDER,
    )
)


# A user by id: the mail worker's and every flow's look-up (issue 12: run on psycopg).
_BY_ID = select(users).where(users.c.id == bindparam("w_id"))
_GET = Direct(_BY_ID)
_GET_LOCKED = Direct(_BY_ID.with_for_update())


class PgUsers:
    """``Users`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, user_id: UUID, *, lock: bool = False) -> UserRecord | None:
        row = await (_GET_LOCKED if lock else _GET).first(self._conn, {"w_id": user_id})
        return user_record(row) if row else None

    async def by_email(self, email: str) -> UserRecord | None:
        row = (await self._conn.execute(select(users).where(users.c.email == email))).first()
        return user_record(row) if row else None

    async def claim(
        self, *, user_id: UUID, email: str, full_name: str, created_by: str
    ) -> UUID | None:
        values = {
            "id": user_id,
            "email": email,
            "full_name": full_name,
            "status": UserStatus.PROVISIONING,
            "created_by": created_by,
        }
        return await _INSERT_IF_FREE.scalar(self._conn, values)

    async def retire(self, user_id: UUID) -> None:
        await self._conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(
                status=UserStatus.DISABLED,
                former_email=func.coalesce(users.c.email, users.c.former_email),
                email=None,
                version=users.c.version + 1,
                updated_at=func.now(),
            )
        )

    async def insert_adopted(self, *, email: str, full_name: str, created_by: str) -> UUID | None:
        return await self._insert_if_free(email, full_name, UserStatus.ACTIVE, created_by)

    async def _insert_if_free(
        self, email: str, full_name: str, status: UserStatus, created_by: str
    ) -> UUID | None:
        values = {
            "id": uuid4(),
            "email": email,
            "full_name": full_name,
            "status": status,
            "created_by": created_by,
        }
        return await _INSERT_IF_FREE.scalar(self._conn, values)

    async def update(self, user_id: UUID, **changes: Unpack[UserChanges]) -> None:
        await _UPDATE.run(self._conn, {"w_id": user_id, **changes})

    async def update_view(self, user_id: UUID, **changes: Unpack[UserChanges]) -> UserView | None:
        row = await _UPDATE_VIEW.first(self._conn, {"w_id": user_id, **changes})
        if row is None or row.pop("placeholder"):
            return None  # as ``view``: a row that only holds an address is no one
        return _view(row)

    async def delete(self, user_id: UUID) -> None:
        await self._conn.execute(delete(users).where(users.c.id == user_id))

    async def view(self, user_id: UUID) -> UserView | None:
        found = await self._views([user_id])
        return found[0] if found else None

    async def list(
        self,
        *,
        organization_id: UUID | None = None,
        email: str | None = None,
        after: UUID | None = None,
        limit: int | None = None,
    ) -> list[UserView]:
        query = select(users.c.id).where(~IS_PLACEHOLDER).order_by(users.c.id)
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
        ids = list((await self._conn.execute(query)).scalars())
        return await self._views(ids)

    async def views(self, ids: Sequence[UUID]) -> list[UserView]:
        """Many users at once (set-wise creation reads its batch's documents so)."""
        return await self._views(ids)

    async def _views(self, ids: Sequence[UUID]) -> list[UserView]:
        """The users with these ids (in this order) and their memberships: one statement."""
        if not ids:
            return []
        rows = await _VIEWS.rows(self._conn, {"w_ids": list(ids)})
        views = {row["id"]: _view(row) for row in rows}
        return [views[i] for i in ids if i in views]

    async def hold_email(self, email: str) -> tuple[bool, UUID | None]:
        query = select(users.c.id, users.c.status).where(users.c.email == email).with_for_update()
        row = (await self._conn.execute(query)).first()
        if row is not None:
            return False, None
        placeholder = await self._insert_if_free(
            email, PLACEHOLDER_NAME, UserStatus.PROVISIONING, "reconcile"
        )
        return placeholder is not None, placeholder

    async def release_email(self, placeholder: UUID | None) -> None:
        if placeholder is not None:
            await self.delete(placeholder)

    async def reserve_email(self, email: str, *, created_by: str) -> UUID | None:
        return await self._insert_if_free(email, RESERVED_NAME, UserStatus.PROVISIONING, created_by)


_HOLDER = select(idp_links.c.user_id).where(
    idp_links.c.provider == bindparam("w_provider"),
    idp_links.c.remote_id == bindparam("w_remote_id"),
)
# Link unless another user holds the identity (then write nothing and name that user): the
# look-up and the upsert in one round trip (the create path's finalize runs it every time).
# ``link`` runs it too. A holder that commits between the look-up and the upsert is still
# refused, by the unique index on (provider, remote_id).
_LINK_UNLESS_HELD = Direct(
    text(
        """
    WITH held AS (
        SELECT user_id FROM idp_links
        WHERE provider = :provider AND remote_id = :remote_id AND user_id <> :user_id
    ), linked AS (
        INSERT INTO idp_links (user_id, provider, remote_id, created_by_accord)
        SELECT :user_id, :provider, :remote_id, :created_by_accord
        WHERE NOT EXISTS (SELECT 1 FROM held)
        ON CONFLICT (user_id, provider) DO UPDATE
        SET remote_id = EXCLUDED.remote_id, created_by_accord = EXCLUDED.created_by_accord
    )
    SELECT user_id FROM held
    """
    ).bindparams(
        bindparam("user_id", type_=idp_links.c.user_id.type),
        bindparam("provider", type_=idp_links.c.provider.type),
        bindparam("remote_id", type_=idp_links.c.remote_id.type),
        bindparam("created_by_accord", type_=idp_links.c.created_by_accord.type),
    )
)


class PgLinks:
    """``Links`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, user_id: UUID, provider: str) -> LinkRecord | None:
        query = select(idp_links).where(
            idp_links.c.user_id == user_id, idp_links.c.provider == provider
        )
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        return LinkRecord(row.user_id, row.provider, row.remote_id, row.created_by_accord)

    async def holder(self, provider: str, remote_id: str) -> UUID | None:
        params = {"w_provider": provider, "w_remote_id": remote_id}
        return (await self._conn.execute(_HOLDER, params)).scalar_one_or_none()

    async def link(
        self, *, user_id: UUID, provider: str, remote_id: str, created_by_accord: bool
    ) -> None:
        # The user's link to this provider is replaced (its primary key); an identity another
        # user holds is refused as the unique index on (provider, remote_id) refuses it.
        holder = await self.link_unless_held(
            user_id=user_id,
            provider=provider,
            remote_id=remote_id,
            created_by_accord=created_by_accord,
        )
        if holder is not None:
            raise errors.ConstraintViolated(LINKED_ELSEWHERE)

    async def link_unless_held(
        self, *, user_id: UUID, provider: str, remote_id: str, created_by_accord: bool
    ) -> UUID | None:
        values = {
            "user_id": user_id,
            "provider": provider,
            "remote_id": remote_id,
            "created_by_accord": created_by_accord,
        }
        return await _LINK_UNLESS_HELD.scalar(self._conn, values)

    async def unlink_all(self, user_id: UUID) -> None:
        await self._conn.execute(delete(idp_links).where(idp_links.c.user_id == user_id))

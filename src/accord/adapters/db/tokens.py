"""SQL for API tokens."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.direct import Direct, mapping
from accord.adapters.db.tables import api_tokens
from accord.domain.model import TokenScope
from accord.domain.records import ApiTokenRecord


def _token(row: Any) -> ApiTokenRecord:
    values = mapping(row)
    return ApiTokenRecord(
        id=values["id"],
        name=values["name"],
        scope=TokenScope(values["scope"]),
        organization_id=values["organization_id"],
        created_at=values["created_at"],
        revoked_at=values["revoked_at"],
    )


# Every authenticated request's lookup, built once and run on psycopg (issue 12).
_LIVE = Direct(
    select(api_tokens).where(
        api_tokens.c.digest == bindparam("w_digest"), api_tokens.c.revoked_at.is_(None)
    )
)


class PgApiTokens:
    """``ApiTokens`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def insert(
        self,
        *,
        token_id: UUID,
        digest: str,
        name: str,
        scope: TokenScope,
        organization_id: UUID | None,
    ) -> ApiTokenRecord:
        statement = (
            insert(api_tokens)
            .values(
                id=token_id, digest=digest, name=name, scope=scope, organization_id=organization_id
            )
            .returning(*api_tokens.c)
        )
        return _token((await self._conn.execute(statement)).one())

    async def live(self, digest: str) -> ApiTokenRecord | None:
        row = await _LIVE.first(self._conn, {"w_digest": digest})
        return _token(row) if row else None

    async def revoke(self, token_id: UUID) -> bool:
        """A second revocation keeps the first time."""
        await self._conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=func.now())
        )
        query = select(api_tokens.c.id).where(api_tokens.c.id == token_id)
        return (await self._conn.execute(query)).first() is not None

    async def live_count(self, organization_id: UUID) -> int:
        query = (
            select(func.count())
            .select_from(api_tokens)
            .where(
                api_tokens.c.organization_id == organization_id, api_tokens.c.revoked_at.is_(None)
            )
        )
        return (await self._conn.execute(query)).scalar_one()

    async def get(self, token_id: UUID) -> ApiTokenRecord | None:
        row = (
            await self._conn.execute(select(api_tokens).where(api_tokens.c.id == token_id))
        ).first()
        return _token(row) if row else None

    async def list_for(self, organization_id: UUID, scope: TokenScope) -> list[ApiTokenRecord]:
        query = (
            select(api_tokens)
            .where(api_tokens.c.organization_id == organization_id, api_tokens.c.scope == scope)
            .order_by(api_tokens.c.created_at, api_tokens.c.id)
        )
        return [_token(row) for row in await self._conn.execute(query)]

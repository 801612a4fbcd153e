"""SQL for pending registrations: the e-mail verification links of ``email_verifications``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.sql import row_values
from accord.adapters.db.tables import email_verifications
from accord.domain.records import NewVerification, VerificationRecord

_LIVE = email_verifications.c.expires_at > func.now()
_COLUMNS = [
    email_verifications.c[name]
    for name in ("id", "email", "request", "sealed_secrets", "expires_at", "created_at")
]


def _record(row: Any) -> VerificationRecord:
    return VerificationRecord(**row._mapping)


class PgVerifications:
    """``Verifications`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def insert(self, new: NewVerification) -> None:
        await self._conn.execute(insert(email_verifications).values(**row_values(new)))

    async def issue_link(self, verification_id: UUID, digest: str) -> VerificationRecord | None:
        row = (
            await self._conn.execute(
                update(email_verifications)
                .where(email_verifications.c.id == verification_id, _LIVE)
                .values(digest=digest)
                .returning(*_COLUMNS)
            )
        ).first()
        return _record(row) if row else None

    async def find_live(self, digest: str) -> VerificationRecord | None:
        query = select(*_COLUMNS).where(email_verifications.c.digest == digest, _LIVE)
        row = (await self._conn.execute(query)).first()
        return _record(row) if row else None

    async def consume(self, verification_id: UUID) -> bool:
        # A concurrent consumer waits on the row lock, then finds the row gone: one wins.
        used = (
            await self._conn.execute(
                delete(email_verifications)
                .where(email_verifications.c.id == verification_id, _LIVE)
                .returning(email_verifications.c.email)
            )
        ).first()
        if used is None:
            return False
        await self._conn.execute(
            delete(email_verifications).where(email_verifications.c.email == used.email)
        )
        return True

    async def expire(self) -> int:
        result = await self._conn.execute(
            delete(email_verifications).where(email_verifications.c.expires_at <= func.now())
        )
        return result.rowcount

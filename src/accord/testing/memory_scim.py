"""In-memory SCIM rows (see ``memory_store.py`` and domain/scim_store.py)."""

from __future__ import annotations

import copy
from dataclasses import replace
from uuid import UUID

from accord.domain.model import UserStatus
from accord.domain.scim_store import ScimUserRecord, ScimUserWrite, user_name_key
from accord.testing.memory_tables import Repository


class MemoryScimUsers(Repository):
    def _taken(self, organization_id: UUID, user_name: str, but: UUID | None) -> bool:
        key = user_name_key(user_name)
        return any(
            r.organization_id == organization_id and user_name_key(r.user_name) == key
            for r in self.t.scim_users.values()
            if r.id != but
        )

    async def claim(
        self, *, row_id: UUID, organization_id: UUID, creation_key: str, write: ScimUserWrite
    ) -> ScimUserRecord | None:
        if self._taken(organization_id, write.user_name, None):
            return None
        now = self.now()
        record = ScimUserRecord(
            id=row_id,
            organization_id=organization_id,
            user_id=None,
            user_name=write.user_name,
            external_id=write.external_id,
            creation_key=creation_key,
            attributes=copy.deepcopy(write.attributes),
            created_at=now,
            updated_at=now,
        )
        self.t.scim_users[row_id] = record
        return copy.deepcopy(record)

    async def by_user_name(self, organization_id: UUID, user_name: str) -> ScimUserRecord | None:
        key = user_name_key(user_name)
        found = (
            r
            for r in self.t.scim_users.values()
            if r.organization_id == organization_id and user_name_key(r.user_name) == key
        )
        return copy.deepcopy(next(found, None))

    async def by_user(self, organization_id: UUID, user_id: UUID) -> ScimUserRecord | None:
        found = (
            r
            for r in self.t.scim_users.values()
            if r.organization_id == organization_id and r.user_id == user_id
        )
        return copy.deepcopy(next(found, None))

    async def bind(self, row_id: UUID, user_id: UUID) -> None:
        if row_id in self.t.scim_users:
            row = self.t.scim_users[row_id]
            self.t.scim_users[row_id] = replace(row, user_id=user_id, updated_at=self.now())

    async def replace(self, row_id: UUID, write: ScimUserWrite) -> bool:
        row = self.t.scim_users.get(row_id)
        if row is None:
            return True
        if self._taken(row.organization_id, write.user_name, row_id):
            return False
        self.t.scim_users[row_id] = replace(
            row,
            user_name=write.user_name,
            external_id=write.external_id,
            attributes=copy.deepcopy(write.attributes),
            updated_at=self.now(),
        )
        return True

    async def delete(self, row_id: UUID) -> None:
        self.t.scim_users.pop(row_id, None)

    async def members(self, organization_id: UUID) -> list[ScimUserRecord]:
        def listed(r: ScimUserRecord) -> bool:
            user = self.t.users.get(r.user_id) if r.user_id else None
            return (
                user is not None
                and user.status != UserStatus.DISABLED
                and (r.user_id, organization_id) in self.t.memberships
            )

        rows = [r for r in self.t.scim_users.values() if r.organization_id == organization_id]
        rows = sorted(filter(listed, rows), key=lambda r: (r.created_at, r.id))
        return copy.deepcopy(rows)

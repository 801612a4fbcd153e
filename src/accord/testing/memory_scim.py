"""In-memory SCIM rows (see ``memory_store.py`` and domain/scim_store.py)."""

from __future__ import annotations

import copy
from dataclasses import replace
from uuid import UUID

from accord.domain.model import UserStatus
from accord.domain.scim_store import (
    ScimGroupGrant,
    ScimGroupRecord,
    ScimGroupWrite,
    ScimUserRecord,
    ScimUserWrite,
    display_name_key,
    user_name_key,
)
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


class MemoryScimGroups(Repository):
    def _taken(self, organization_id: UUID, display_name: str, but: UUID | None) -> bool:
        key = display_name_key(display_name)
        return any(
            g.organization_id == organization_id and display_name_key(g.display_name) == key
            for g in self.t.scim_groups.values()
            if g.id != but
        )

    def _out(self, group: ScimGroupRecord | None) -> ScimGroupRecord | None:
        """The group as the database answers it: members whose user still exists."""
        if group is None:
            return None
        members = tuple(uid for uid in group.members if uid in self.t.users)
        return copy.deepcopy(replace(group, members=members))

    async def create(
        self, *, group_id: UUID, organization_id: UUID, write: ScimGroupWrite
    ) -> ScimGroupRecord | None:
        if self._taken(organization_id, write.display_name, None):
            return None
        now = self.now()
        self.t.scim_groups[group_id] = ScimGroupRecord(
            id=group_id,
            organization_id=organization_id,
            display_name=write.display_name,
            external_id=write.external_id,
            members=tuple(dict.fromkeys(write.members)),
            created_at=now,
            updated_at=now,
        )
        return self._out(self.t.scim_groups[group_id])

    async def get(self, organization_id: UUID, group_id: UUID) -> ScimGroupRecord | None:
        group = self.t.scim_groups.get(group_id)
        if group is None or group.organization_id != organization_id:
            return None
        return self._out(group)

    async def by_display_name(
        self, organization_id: UUID, display_name: str
    ) -> ScimGroupRecord | None:
        key = display_name_key(display_name)
        found = (
            g
            for g in self.t.scim_groups.values()
            if g.organization_id == organization_id and display_name_key(g.display_name) == key
        )
        return self._out(next(found, None))

    async def list(self, organization_id: UUID) -> list[ScimGroupRecord]:
        groups = [g for g in self.t.scim_groups.values() if g.organization_id == organization_id]
        return [g for g in map(self._out, sorted(groups, key=lambda g: (g.created_at, g.id))) if g]

    async def replace(self, group_id: UUID, write: ScimGroupWrite) -> bool:
        group = self.t.scim_groups.get(group_id)
        if group is None:
            return True
        if self._taken(group.organization_id, write.display_name, group_id):
            return False
        self.t.scim_groups[group_id] = replace(
            group,
            display_name=write.display_name,
            external_id=write.external_id,
            members=tuple(dict.fromkeys(write.members)),
            updated_at=self.now(),
        )
        return True

    async def delete(self, group_id: UUID) -> None:
        self.t.scim_groups.pop(group_id, None)

    async def drop_member(self, organization_id: UUID, user_id: UUID) -> None:
        for key, group in list(self.t.scim_groups.items()):
            if group.organization_id == organization_id and user_id in group.members:
                members = tuple(uid for uid in group.members if uid != user_id)
                self.t.scim_groups[key] = replace(group, members=members)

    async def grants(self, organization_id: UUID) -> dict[str, ScimGroupGrant]:
        return {
            key: grant
            for (org_id, key), grant in self.t.scim_group_grants.items()
            if org_id == organization_id
        }

    async def put_grant(self, grant: ScimGroupGrant) -> None:
        key = (grant.organization_id, display_name_key(grant.display_name))
        self.t.scim_group_grants[key] = grant

    async def remove_grant(self, organization_id: UUID, display_name: str) -> bool:
        key = (organization_id, display_name_key(display_name))
        return self.t.scim_group_grants.pop(key, None) is not None

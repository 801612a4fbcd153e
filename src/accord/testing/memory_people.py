"""In-memory users, links, memberships and organizations (see ``memory_store.py``)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any
from uuid import UUID, uuid4

from typing_extensions import Unpack

from accord.domain import errors
from accord.domain.model import (
    OrganizationKind,
    Role,
    UserStatus,
)
from accord.domain.records import (
    LinkRecord,
    MemberRecord,
    MembershipRecord,
    NewOrganizationRecord,
    OrganizationRecord,
    OrganizationSummary,
    UserRecord,
    UserView,
)
from accord.domain.store import LINKED_ELSEWHERE, OrganizationChanges, UserChanges
from accord.testing.memory_invitations import held_seats
from accord.testing.memory_tables import PLACEHOLDER_NAME, Repository, open_claims
from accord.testing.memory_webhooks import drop_endpoints

RESERVED_NAME = "(reserved for an e-mail change)"
PLACEHOLDERS = (PLACEHOLDER_NAME, RESERVED_NAME)  # rows that only hold an address


class MemoryUsers(Repository):
    async def get(self, user_id: UUID, *, lock: bool = False) -> UserRecord | None:
        return copy.deepcopy(self.t.users.get(user_id))

    async def by_email(self, email: str) -> UserRecord | None:
        return copy.deepcopy(next((u for u in self.t.users.values() if u.email == email), None))

    def _new(self, user_id: UUID, email: str, name: str, status: UserStatus, by: str) -> UUID:
        now = self.now()
        self.t.users[user_id] = UserRecord(
            user_id, email, name, status, False, False, by, 1, now, now
        )
        return user_id

    async def claim(
        self, *, user_id: UUID, email: str, full_name: str, created_by: str
    ) -> UUID | None:
        if await self.by_email(email) is not None:
            return None
        return self._new(user_id, email, full_name, UserStatus.PROVISIONING, created_by)

    async def retire(self, user_id: UUID) -> None:
        user = self.t.users.get(user_id)
        if user is not None:
            self.t.users[user_id] = replace(
                user,
                status=UserStatus.DISABLED,
                email=None,
                former_email=user.email or user.former_email,
                version=user.version + 1,
                updated_at=self.now(),
            )

    async def insert_adopted(self, *, email: str, full_name: str, created_by: str) -> UUID | None:
        if await self.by_email(email) is not None:
            return None
        return self._new(uuid4(), email, full_name, UserStatus.ACTIVE, created_by)

    async def update(self, user_id: UUID, **changes: Unpack[UserChanges]) -> None:
        user = self.t.users.get(user_id)
        email = changes.get("email")
        if email is not None and any(
            u.email == email and u.id != user_id for u in self.t.users.values()
        ):
            raise errors.EmailAlreadyExists(f"A user with the e-mail address {email} exists.")
        if user is not None:
            self.t.users[user_id] = replace(
                user, **changes, version=user.version + 1, updated_at=self.now()
            )

    async def update_view(self, user_id: UUID, **changes: Unpack[UserChanges]) -> UserView | None:
        await self.update(user_id, **changes)
        return await self.view(user_id)

    async def delete(self, user_id: UUID) -> None:
        if self.t.users.pop(user_id, None) is None:
            return
        for key in [k for k in self.t.links if k[0] == user_id]:
            del self.t.links[key]
        for key in [k for k in self.t.memberships if k[0] == user_id]:
            del self.t.memberships[key]
        for key in [k for k, r in self.t.scim_users.items() if r.user_id == user_id]:
            del self.t.scim_users[key]
        for key in [k for k, v in self.t.tokens.items() if v.user_id == user_id]:
            del self.t.tokens[key]
        for key, (digest, invitation) in list(self.t.invitations.items()):
            if invitation.accepted_user_id == user_id:  # ON DELETE SET NULL
                self.t.invitations[key] = (digest, replace(invitation, accepted_user_id=None))
        for org in list(self.t.organizations.values()):
            if org.owner_user_id == user_id:
                self.t.organizations[org.id] = replace(org, owner_user_id=None)

    async def view(self, user_id: UUID) -> UserView | None:
        views = await self.list()
        return next((v for v in views if v.user.id == user_id), None)

    async def list(
        self,
        *,
        organization_id: UUID | None = None,
        email: str | None = None,
        after: UUID | None = None,
        limit: int | None = None,
    ) -> list[UserView]:
        found = []
        for user in sorted(self.t.users.values(), key=lambda u: u.id):
            held = tuple(m for (uid, _), m in self.t.memberships.items() if uid == user.id)
            if organization_id is not None and all(
                m.organization_id != organization_id for m in held
            ):
                continue
            if (email is not None and user.email != email) or (after and user.id <= after):
                continue
            if user.status == UserStatus.PROVISIONING and user.full_name in PLACEHOLDERS:
                continue  # it only holds an address: no one
            found.append(copy.deepcopy(UserView(user, held)))
        return found[:limit] if limit is not None else found

    async def hold_email(self, email: str) -> tuple[bool, UUID | None]:
        if await self.by_email(email) is not None:
            return False, None
        return True, self._new(uuid4(), email, PLACEHOLDER_NAME, UserStatus.PROVISIONING, "x")

    async def release_email(self, placeholder: UUID | None) -> None:
        if placeholder is not None:
            await self.delete(placeholder)

    async def reserve_email(self, email: str, *, created_by: str) -> UUID | None:
        if await self.by_email(email) is not None:
            return None
        return self._new(uuid4(), email, RESERVED_NAME, UserStatus.PROVISIONING, created_by)


class MemoryLinks(Repository):
    async def get(self, user_id: UUID, provider: str) -> LinkRecord | None:
        return self.t.links.get((user_id, provider))

    async def holder(self, provider: str, remote_id: str) -> UUID | None:
        return next(
            (
                link.user_id
                for link in self.t.links.values()
                if (link.provider, link.remote_id) == (provider, remote_id)
            ),
            None,
        )

    async def link(
        self, *, user_id: UUID, provider: str, remote_id: str, created_by_accord: bool
    ) -> None:
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
        holder = await self.holder(provider, remote_id)
        if holder is not None and holder != user_id:
            return holder
        # The user's link to this provider is replaced (one per user and provider).
        self.t.links[(user_id, provider)] = LinkRecord(
            user_id, provider, remote_id, created_by_accord
        )
        return None

    async def unlink_all(self, user_id: UUID) -> None:
        for key in [k for k in self.t.links if k[0] == user_id]:
            del self.t.links[key]


class MemoryMemberships(Repository):
    async def put(
        self, *, user_id: UUID, organization_id: UUID, role: Role, permissions: Sequence[str]
    ) -> None:
        if organization_id not in self.t.organizations:
            raise errors.OrganizationNotFound()
        if user_id not in self.t.users:
            raise errors.ConstraintViolated("fk_memberships_user_id_users")
        record = MembershipRecord(user_id, organization_id, Role(role), tuple(permissions))
        self.t.memberships[(user_id, organization_id)] = record

    async def remove_all(self, user_id: UUID) -> None:
        for key in [k for k in self.t.memberships if k[0] == user_id]:
            del self.t.memberships[key]

    async def remove(self, user_id: UUID, organization_id: UUID) -> bool:
        return self.t.memberships.pop((user_id, organization_id), None) is not None

    async def organizations_of(self, user_id: UUID) -> list[UUID]:
        return [org for uid, org in self.t.memberships if uid == user_id]

    async def count(self, organization_id: UUID) -> int:
        return sum(1 for _, org in self.t.memberships if org == organization_id)

    async def lock_leavers(self, organization_id: UUID) -> list[UUID]:
        here = {uid for uid, org in self.t.memberships if org == organization_id}
        elsewhere = {uid for uid, org in self.t.memberships if org != organization_id}
        return sorted(here - elsewhere)

    async def members(self, organization_id: UUID) -> dict[UUID, MemberRecord]:
        return {
            uid: MemberRecord(m, self.t.users[uid].email)
            for (uid, org), m in self.t.memberships.items()
            if org == organization_id
        }

    async def get(self, user_id: UUID, organization_id: UUID) -> MembershipRecord | None:
        return self.t.memberships.get((user_id, organization_id))

    async def page(
        self, organization_id: UUID, *, after: UUID | None = None, limit: int = 50
    ) -> list[MemberRecord]:
        found = sorted(
            (uid, m)
            for (uid, org), m in self.t.memberships.items()
            if org == organization_id and (after is None or uid > after)
        )
        return [MemberRecord(m, self.t.users[uid].email or "") for uid, m in found[:limit]]

    async def count_admins(self, organization_id: UUID) -> int:
        return sum(
            1
            for (_, org), m in self.t.memberships.items()
            if org == organization_id and m.role == Role.ORG_ADMIN
        )


class MemoryOrganizations(Repository):
    async def get(self, organization_id: UUID, *, lock: bool = False) -> OrganizationRecord | None:
        return copy.deepcopy(self.t.organizations.get(organization_id))

    async def lock_many(self, ids: Sequence[UUID]) -> dict[UUID, OrganizationRecord]:
        return {i: copy.deepcopy(self.t.organizations[i]) for i in ids if i in self.t.organizations}

    async def lock_seats(self, organization_id: UUID) -> tuple[OrganizationRecord, int] | None:
        org = self.t.organizations.get(organization_id)
        if org is None:
            return None
        members = sum(1 for (_, o) in self.t.memberships if o == organization_id)
        # Pending invitations hold seats too: creates, member adds and invitations share one count.
        held = held_seats(self.t, organization_id, self.now())
        return copy.deepcopy(org), members + open_claims(self.t, organization_id) + held

    async def keep(self, organization_id: UUID) -> OrganizationRecord | None:
        return copy.deepcopy(self.t.organizations.get(organization_id))

    async def by_slug(self, slug: str) -> OrganizationRecord | None:
        found = (o for o in self.t.organizations.values() if o.slug == slug)
        return copy.deepcopy(next(found, None))

    async def personal_of(self, owner_id: UUID) -> OrganizationRecord | None:
        found = (
            o
            for o in self.t.organizations.values()
            if o.owner_user_id == owner_id and o.kind == OrganizationKind.PERSONAL
        )
        return copy.deepcopy(next(found, None))

    async def insert(self, new: NewOrganizationRecord) -> OrganizationRecord | None:
        if not new.max_users >= 1:
            raise errors.InvalidInput()
        taken = await self.by_slug(new.slug) is not None or (
            new.kind == OrganizationKind.PERSONAL
            and new.owner_user_id is not None
            and await self.personal_of(new.owner_user_id) is not None
        )
        if taken:
            return None
        now = self.now()
        record = OrganizationRecord(**asdict(new), version=1, created_at=now, updated_at=now)
        self.t.organizations[new.id] = record
        return copy.deepcopy(record)

    async def update_settings(self, organization_id: UUID, settings: dict[str, Any]) -> None:
        org = self.t.organizations[organization_id]
        self.t.organizations[organization_id] = replace(
            org, settings=dict(settings), version=org.version + 1, updated_at=self.now()
        )

    async def update(
        self, organization_id: UUID, **changes: Unpack[OrganizationChanges]
    ) -> OrganizationRecord | None:
        org = self.t.organizations.get(organization_id)
        if org is None:
            return None
        if changes.get("max_users", 1) < 1:
            raise errors.ConstraintViolated("ck_organizations_max_users_positive")
        changed = replace(org, **changes, version=org.version + 1, updated_at=self.now())
        self.t.organizations[organization_id] = changed
        return copy.deepcopy(changed)

    async def delete(self, organization_id: UUID) -> None:
        self.t.organizations.pop(organization_id, None)
        for key in [k for k in self.t.memberships if k[1] == organization_id]:
            del self.t.memberships[key]
        for key, (_, token) in list(self.t.api_tokens.items()):
            if token.organization_id == organization_id:
                del self.t.api_tokens[key]
        for key in [
            k for k, r in self.t.scim_users.items() if r.organization_id == organization_id
        ]:
            del self.t.scim_users[key]
        for key in [
            k for k, g in self.t.scim_groups.items() if g.organization_id == organization_id
        ]:
            del self.t.scim_groups[key]
        for grant_key in [k for k in self.t.scim_group_grants if k[0] == organization_id]:
            del self.t.scim_group_grants[grant_key]
        for key in [
            k for k, (_, r) in self.t.invitations.items() if r.organization_id == organization_id
        ]:
            del self.t.invitations[key]
        drop_endpoints(self.t, organization_id)

    async def summary(self, organization_id: UUID) -> OrganizationSummary | None:
        return next(iter(await self.summaries([organization_id])), None)

    async def summaries(self, ids: Sequence[UUID] | None = None) -> list[OrganizationSummary]:
        wanted = set(ids) if ids is not None else None
        return [
            OrganizationSummary(
                copy.deepcopy(org), sum(1 for _, o in self.t.memberships if o == org.id)
            )
            for org in sorted(self.t.organizations.values(), key=lambda o: o.slug)
            if wanted is None or org.id in wanted
        ]

"""What accord keeps of a SCIM client's users: one row per (organization, userName).

A row is claimed before the engine creates the user (its unique ``user_name_key`` within the
organization settles two different creates of one userName), bound to the accord user once the
create succeeded, and carries the SCIM-only attributes (``externalId``, ``name``,
``displayName``, the e-mail list) that accord's own tables have no column for.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from accord.domain.model import Role


def user_name_key(user_name: str) -> str:
    """The form two userNames are compared in: NFC, lowercase (RFC 7643: caseExact false)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", user_name).lower())


@dataclass(frozen=True)
class ScimUserRecord:
    """One row of ``scim_users``."""

    id: UUID
    organization_id: UUID
    user_id: UUID | None  # None until the create that claimed the row has succeeded
    user_name: str
    external_id: str | None
    creation_key: str
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ScimUserWrite:
    """The columns a claim or a replacement writes."""

    user_name: str
    external_id: str | None
    attributes: dict[str, Any]


class ScimUsers(Protocol):
    """The SCIM rows of every organization; each method is scoped to one organization."""

    async def claim(
        self, *, row_id: UUID, organization_id: UUID, creation_key: str, write: ScimUserWrite
    ) -> ScimUserRecord | None:
        """Insert an unbound row; None if the organization has that userName already."""
        ...

    async def by_user_name(self, organization_id: UUID, user_name: str) -> ScimUserRecord | None:
        """The row of that userName (compared case-insensitively), bound or not."""
        ...

    async def by_user(self, organization_id: UUID, user_id: UUID) -> ScimUserRecord | None:
        """The row bound to that accord user in that organization."""
        ...

    async def bind(self, row_id: UUID, user_id: UUID) -> None:
        """Bind the row to the user the create made (or linked)."""
        ...

    async def replace(self, row_id: UUID, write: ScimUserWrite) -> bool:
        """Write the row's attributes; False if another row has the new userName."""
        ...

    async def delete(self, row_id: UUID) -> None: ...

    async def members(self, organization_id: UUID) -> list[ScimUserRecord]:
        """The bound rows whose user is still a member of the organization and not
        deprovisioned, in a stable order (oldest first)."""
        ...


# -- groups --------------------------------------------------------------------------------------


def display_name_key(display_name: str) -> str:
    """The form two group displayNames are compared in (case-insensitively, like userNames)."""
    return user_name_key(display_name.strip())


@dataclass(frozen=True)
class ScimGroupRecord:
    """One row of ``scim_groups``, with its members (accord user ids, in the order added)."""

    id: UUID
    organization_id: UUID
    display_name: str
    external_id: str | None
    members: tuple[UUID, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ScimGroupWrite:
    """What a create or a replacement writes: the members replace the old ones."""

    display_name: str
    external_id: str | None
    members: tuple[UUID, ...]


@dataclass(frozen=True)
class ScimGroupGrant:
    """What membership of a group of that displayName gives in the organization."""

    organization_id: UUID
    display_name: str
    role: Role
    permissions: tuple[str, ...]


class ScimGroups(Protocol):
    """The SCIM groups of every organization; each read is scoped to one organization."""

    async def create(
        self, *, group_id: UUID, organization_id: UUID, write: ScimGroupWrite
    ) -> ScimGroupRecord | None:
        """Insert a group; None if the organization has that displayName already."""
        ...

    async def get(self, organization_id: UUID, group_id: UUID) -> ScimGroupRecord | None:
        """The group, if it is one of that organization's."""
        ...

    async def by_display_name(
        self, organization_id: UUID, display_name: str
    ) -> ScimGroupRecord | None:
        """The group of that displayName (compared case-insensitively)."""
        ...

    async def list(self, organization_id: UUID) -> list[ScimGroupRecord]:
        """The organization's groups, oldest first (a stable order for paging)."""
        ...

    async def replace(self, group_id: UUID, write: ScimGroupWrite) -> bool:
        """Write the group and its members; False if another group has the new displayName."""
        ...

    async def delete(self, group_id: UUID) -> None: ...

    async def drop_member(self, organization_id: UUID, user_id: UUID) -> None:
        """Take the user out of every group of the organization."""
        ...

    async def grants(self, organization_id: UUID) -> dict[str, ScimGroupGrant]:
        """The organization's group grants, by ``display_name_key``."""
        ...

    async def put_grant(self, grant: ScimGroupGrant) -> None:
        """Set (or replace) the grant of that displayName."""
        ...

    async def remove_grant(self, organization_id: UUID, display_name: str) -> bool:
        """Remove the grant of that displayName; False if there was none."""
        ...

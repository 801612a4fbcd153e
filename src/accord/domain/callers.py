"""Who is asking: the caller's scope decides what it may touch (G10), and its key scopes its
idempotency keys (one caller can never replay another's stored response)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from accord.domain.errors import Forbidden


@dataclass(frozen=True)
class Caller:
    """An authenticated (or public) caller.

    ``key`` identifies the caller for idempotency scoping (e.g. ``token:<id>``); ``actor`` names
    the person or process for the audit trail (e.g. the ``X-Acting-User``).
    """

    key: str
    actor: str
    is_platform: bool = False
    organization_id: UUID | None = None

    @classmethod
    def platform(cls, key: str, actor: str | None = None) -> Caller:
        return cls(key=key, actor=actor or key, is_platform=True)

    @classmethod
    def organization(cls, key: str, organization_id: UUID, actor: str | None = None) -> Caller:
        return cls(key=key, actor=actor or key, organization_id=organization_id)

    @classmethod
    def public(cls, actor: str = "self-registration") -> Caller:
        return cls(key="public", actor=actor)

    def acting_as(self, actor: str | None) -> Caller:
        """The same caller, with ``actor`` named for the audit trail (if given)."""
        if not actor:
            return self
        return Caller(self.key, actor, self.is_platform, self.organization_id)

    def can_manage(self, organization_id: UUID) -> bool:
        return self.is_platform or self.organization_id == organization_id

    def require_organization(self, organization_id: UUID) -> None:
        """Raise Forbidden unless this caller may manage ``organization_id``."""
        if not self.can_manage(organization_id):
            raise Forbidden("This token may not manage that organization.")

    def require_platform(self) -> None:
        """Raise Forbidden unless this is a platform-wide caller."""
        if not self.is_platform:
            raise Forbidden("This needs a platform token.")

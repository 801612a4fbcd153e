"""Who is asking: the caller's scope decides what it may touch (G10), and its key scopes its
idempotency keys (one caller can never replay another's stored response)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from accord.domain.errors import Forbidden
from accord.domain.principals import Principal, check_claim


@dataclass(frozen=True)
class Caller:
    """An authenticated (or public) caller.

    ``key`` identifies the caller for idempotency scoping (e.g. ``token:<id>``); ``principal``
    is who was authenticated, and names the caller in the audit trail and in ``created_by``;
    ``claimed_actor`` is the person it says it acts for (``X-Acting-User``), kept as a claim.
    """

    key: str
    principal: Principal
    is_platform: bool = False
    organization_id: UUID | None = None
    claimed_actor: str | None = None

    @classmethod
    def platform(
        cls, key: str, actor: str | None = None, *, principal: Principal | None = None
    ) -> Caller:
        """A platform caller; ``actor`` is its claimed acting user (if any)."""
        found = principal or _principal_of(key, None)
        return cls(key, found, is_platform=True, claimed_actor=check_claim(actor))

    @classmethod
    def organization(
        cls,
        key: str,
        organization_id: UUID,
        actor: str | None = None,
        *,
        principal: Principal | None = None,
    ) -> Caller:
        """A caller scoped to ``organization_id``; ``actor`` is its claimed acting user."""
        found = principal or _principal_of(key, organization_id)
        return cls(key, found, organization_id=organization_id, claimed_actor=check_claim(actor))

    @classmethod
    def public(cls, actor: str | None = None) -> Caller:
        return cls("public", Principal.public(), claimed_actor=check_claim(actor))

    @property
    def actor(self) -> str:
        """The principal's label: what the audit trail and ``created_by`` name (never the claim)."""
        return self.principal.label

    def acting_as(self, actor: str | None) -> Caller:
        """The same caller, claiming to act for ``actor`` (if given; checked by check_claim)."""
        if not actor:
            return self
        return replace(self, claimed_actor=check_claim(actor))

    def audit_fields(self) -> dict[str, Any]:
        """The ``actor``, ``principal`` and ``claimed_actor`` of an AuditEvent by this caller."""
        return {
            "actor": self.actor,
            "principal": self.principal,
            "claimed_actor": self.claimed_actor,
        }

    def operation_fields(self) -> dict[str, Any]:
        """What an operation's stored request keeps of its caller (read by ``audit_by``)."""
        return {
            "actor": self.actor,
            "principal": self.principal.to_json(),
            "claimed_actor": self.claimed_actor,
        }

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


def _principal_of(key: str, organization_id: UUID | None) -> Principal:
    """A ``token:<uuid>`` key is that token; any other key names a system caller (CLI, tests)."""
    kind, _, rest = key.partition(":")
    if kind == "token":
        try:
            return Principal.token(UUID(rest), organization_id)
        except ValueError:
            pass
    return Principal.system(key)

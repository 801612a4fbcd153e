"""Who really acted: the authenticated principal, apart from the acting user it claims.

A token holder may say who it acts for (``X-Acting-User``, ``--acting-user``); accord cannot
check that, so the audit trail keeps it as a *claim* next to the principal it did check: the
API token (and its scope), the signed-in user, the public, or accord itself (CLI, worker).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from accord.domain.errors import InvalidActingUser

MAX_CLAIM_LENGTH = 200
PLATFORM_SCOPE = "platform"

# Bidirectional controls (UAX #9) reorder what a reader sees: "admin\u202eresu" reads as
# "adminuser" backwards. They are format characters (Cf), refused with every other one.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class PrincipalKind(StrEnum):
    TOKEN = "token"  # an API token: its id and scope
    USER = "user"  # a person proven by a password, a link or a login token
    PUBLIC = "public"  # nobody authenticated (public registration)
    SYSTEM = "system"  # accord itself: the CLI operator, the worker, a repair
    UNRECORDED = "unrecorded"  # an event from before revision 0006: its actor is unverified


@dataclass(frozen=True)
class Principal:
    """The authenticated party behind a request, as the audit trail records it."""

    kind: PrincipalKind
    token_id: UUID | None = None
    scope: str | None = None  # a token's: "platform" or its organization's id
    user_id: UUID | None = None
    name: str | None = None  # a system principal's: "accord", "cli:alice", "worker"

    @classmethod
    def token(cls, token_id: UUID, organization_id: UUID | None = None) -> Principal:
        scope = PLATFORM_SCOPE if organization_id is None else str(organization_id)
        return cls(PrincipalKind.TOKEN, token_id=token_id, scope=scope)

    @classmethod
    def user(cls, user_id: UUID) -> Principal:
        return cls(PrincipalKind.USER, user_id=user_id)

    @classmethod
    def public(cls) -> Principal:
        return cls(PrincipalKind.PUBLIC)

    @classmethod
    def system(cls, name: str) -> Principal:
        return cls(PrincipalKind.SYSTEM, name=name)

    @property
    def label(self) -> str:
        """A short stable name: ``token:<id>``, ``user:<id>``, ``public`` or the system name."""
        if self.kind == PrincipalKind.TOKEN:
            return f"token:{self.token_id}"
        if self.kind == PrincipalKind.USER:
            return f"user:{self.user_id}"
        if self.kind == PrincipalKind.PUBLIC:
            return "public"
        return self.name or "accord"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "token_id": str(self.token_id) if self.token_id else None,
            "scope": self.scope,
            "user_id": str(self.user_id) if self.user_id else None,
            "name": self.name,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Principal | None:
        """The principal ``to_json`` wrote (None for an operation stored before principals)."""
        if not data:
            return None
        return cls(
            PrincipalKind(data["kind"]),
            token_id=UUID(data["token_id"]) if data.get("token_id") else None,
            scope=data.get("scope"),
            user_id=UUID(data["user_id"]) if data.get("user_id") else None,
            name=data.get("name"),
        )


def check_claim(raw: str | None) -> str | None:
    """The claimed acting user, or InvalidActingUser: 1 to 200 printable characters, without
    control, format (bidi, zero-width) or unassigned characters. NFC, so "Zoë" is one spelling."""
    if raw is None:
        return None
    claim = unicodedata.normalize("NFC", raw.strip())
    if not claim or len(claim) > MAX_CLAIM_LENGTH:
        raise InvalidActingUser(
            f"The acting user must be 1 to {MAX_CLAIM_LENGTH} characters "
            f"(this one has {len(claim)})."
        )
    bad = next((ch for ch in claim if unicodedata.category(ch) in _REFUSED_CATEGORIES), None)
    if bad is not None:
        raise InvalidActingUser(
            f"The acting user contains the invisible or control character U+{ord(bad):04X}; "
            "send printable text only (names in any script are fine)."
        )
    return claim


def audit_by(request: dict[str, Any]) -> dict[str, Any]:
    """The ``actor``, ``principal`` and ``claimed_actor`` of an AuditEvent for an operation's
    stored request (see ``Caller.operation_fields``)."""
    return {
        "actor": request.get("actor", "accord"),
        "principal": Principal.from_json(request.get("principal")),
        "claimed_actor": request.get("claimed_actor"),
    }

"""Typed records: what the store hands the services, one frozen dataclass per stored thing.

The store (``domain/store.py``, implemented in ``adapters/db`` and ``accord.testing``) returns
these; services turn them into the JSON documents the API and the stored results carry
(``services/views.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from accord.domain.model import (
    LIVE_STATUSES,
    OperationKind,
    OperationState,
    OrganizationKind,
    RecoveryPoint,
    Role,
    TokenPurpose,
    TokenScope,
    UserStatus,
)
from accord.domain.principals import Principal


@dataclass(frozen=True)
class UserRecord:
    """One row of ``users``."""

    id: UUID
    email: str | None  # None once deprovisioned: the address is free for a new person
    full_name: str
    status: UserStatus
    is_platform_admin: bool
    require_password_change: bool
    created_by: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    former_email: str | None = None  # a deprovisioned user's address, kept for its history

    @property
    def is_live(self) -> bool:
        """Whether the user may sign in (pending or active)."""
        return self.status in LIVE_STATUSES


@dataclass(frozen=True)
class MembershipRecord:
    """One user's place in one organization."""

    user_id: UUID
    organization_id: UUID
    role: Role
    permissions: tuple[str, ...] = ()


@dataclass(frozen=True)
class MemberRecord:
    """A membership with the member's e-mail (what merges and listings show)."""

    membership: MembershipRecord
    email: str


@dataclass(frozen=True)
class UserView:
    """A user with its memberships: what a read of a user returns."""

    user: UserRecord
    memberships: tuple[MembershipRecord, ...] = ()


@dataclass(frozen=True)
class LinkRecord:
    """A user's link to its identity at one provider."""

    user_id: UUID
    provider: str
    remote_id: str
    created_by_accord: bool


@dataclass(frozen=True)
class OrganizationRecord:
    """One row of ``organizations``."""

    id: UUID
    slug: str
    display_name: str
    kind: OrganizationKind
    owner_user_id: UUID | None
    plan_type: str
    max_users: int
    status: str
    settings: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class OrganizationSummary:
    """An organization with its member count: what a read of an organization returns."""

    organization: OrganizationRecord
    members: int


@dataclass(frozen=True)
class NewOrganizationRecord:
    """The columns of an organization to insert (the rest take their defaults)."""

    id: UUID
    slug: str
    display_name: str
    kind: OrganizationKind
    owner_user_id: UUID | None = None
    plan_type: str = "trial"
    max_users: int = 10
    status: str = "trial"
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OperationRecord:
    """One row of ``operations``: the durable record of an operation (services/operations.py)."""

    id: UUID
    kind: OperationKind
    caller: str
    idempotency_key: str | None
    request_digest: str
    request: dict[str, Any]
    sealed_secrets: bytes | None
    flow_state: dict[str, Any]
    state: OperationState
    recovery_point: RecoveryPoint
    user_id: UUID | None
    organization_id: UUID | None
    remote_id: str | None
    created_remote: bool | None
    attempts: int
    next_attempt_at: datetime | None
    lease_until: datetime | None
    deadline_at: datetime
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    @property
    def is_terminal(self) -> bool:
        return self.state != OperationState.OPEN


@dataclass(frozen=True)
class NewOperation:
    """An operation to insert: open at ``claimed``, or already failed (a refused claim)."""

    id: UUID
    kind: OperationKind
    caller: str
    idempotency_key: str | None
    request_digest: str
    request: dict[str, Any]
    sealed_secrets: bytes | None
    state: OperationState
    recovery_point: RecoveryPoint
    deadline_at: datetime
    lease_until: datetime | None
    attempts: int = 1
    error: dict[str, Any] | None = None
    # The subject, where the request names it before the claim runs (a create chooses its
    # user's id up front): the claim then has no update to make to the row it inserted.
    user_id: UUID | None = None
    organization_id: UUID | None = None


@dataclass(frozen=True)
class AuditEvent:
    """One entry of the append-only audit trail.

    ``actor`` is the principal's label; ``principal`` the authenticated party itself (accord,
    named by ``actor``, when not given); ``claimed_actor`` whom the caller said it acted for.
    """

    actor: str
    action: str
    subject_user_id: UUID | None = None
    subject_email: str | None = None
    organization_id: UUID | None = None
    operation_id: UUID | None = None
    data: dict[str, Any] = field(default_factory=dict)
    principal: Principal | None = None
    claimed_actor: str | None = None

    def __post_init__(self) -> None:
        if self.principal is None:  # an internal event: accord (CLI, worker, repair) acted
            object.__setattr__(self, "principal", Principal.system(self.actor))

    @property
    def by(self) -> Principal:
        """The principal (always set after construction)."""
        assert self.principal is not None
        return self.principal


@dataclass(frozen=True)
class AuditEntry:
    """A stored audit event: its id and time, then the event."""

    id: int
    at: datetime
    event: AuditEvent


@dataclass(frozen=True)
class AuditQuery:
    """Filters of the audit trail; ``None`` matches anything. ``after`` is the (at, id) of the
    last entry of the previous page: entries come in (at, id) order."""

    organization_id: UUID | None = None
    user_id: UUID | None = None  # the subject, or the signed-in user who acted
    action: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    after: tuple[datetime, int] | None = None
    limit: int = 50


@dataclass(frozen=True)
class OutboxMessage:
    """A message queued in the same transaction as the change it announces."""

    id: int
    kind: str
    dedupe_key: str
    recipient: str
    payload: dict[str, Any]
    attempts: int
    sent_at: datetime | None = None


@dataclass(frozen=True)
class OneTimeTokenRecord:
    """A single-use token, stored as its SHA-256 digest only."""

    id: int
    digest: str
    user_id: UUID
    purpose: TokenPurpose
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True)
class ApiTokenRecord:
    """An API token as stored (its digest never leaves the store)."""

    id: UUID
    name: str
    scope: TokenScope
    organization_id: UUID | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewVerification:
    """A registration waiting for its e-mail to be proven: the chosen password sealed."""

    id: UUID
    email: str
    request: dict[str, Any]  # the registration without its password
    sealed_secrets: bytes = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True)
class VerificationRecord:
    """A pending registration as stored; its link's token exists only as a SHA-256 digest."""

    id: UUID
    email: str
    request: dict[str, Any]
    sealed_secrets: bytes = field(repr=False)
    expires_at: datetime
    created_at: datetime


@dataclass(frozen=True)
class MailRecord:
    """A message kept in the embedded mailbox (no SMTP server configured)."""

    id: int
    recipient: str
    subject: str
    body: str
    created_at: datetime


@dataclass(frozen=True)
class NewEvent:
    """A feed event to append in the transaction of its change (``domain/changes.py``); the
    store gives it the subject's next version and the fields changed since the previous one."""

    id: UUID
    type: str
    subject_type: str  # user, organization, membership, invitation
    subject_id: str
    organization_id: UUID | None
    user_id: UUID | None
    invitation_id: UUID | None
    data: dict[str, Any] | None  # the subject as the API shows it now; None once it is gone
    organization_ids: tuple[UUID, ...]  # whose organization tokens see it
    operation_id: UUID | None  # the store adds the operation's idempotency key


@dataclass(frozen=True)
class NewChange:
    """A feed event's content as stored: the event with the subject's version and the fields
    that changed."""

    id: UUID
    type: str
    subject_type: str  # user, organization, membership, invitation
    subject_id: str
    version: int
    organization_id: UUID | None
    user_id: UUID | None
    invitation_id: UUID | None
    data: dict[str, Any] | None  # the subject as the API shows it now; None once it is gone
    organization_ids: tuple[UUID, ...]  # whose organization tokens see it
    changed: tuple[str, ...]
    operation_id: UUID | None
    idempotency_key: str | None


@dataclass(frozen=True)
class ChangeEvent:
    """A feed event as stored: ``position`` is its place in the feed (None until assigned)."""

    seq: int
    position: int | None
    occurred_at: datetime
    change: NewChange


@dataclass(frozen=True)
class FeedQuery:
    """A page of the feed: assigned events after ``after``, in position order."""

    after: int = 0
    limit: int = 100
    types: tuple[str, ...] = ()
    organization_id: UUID | None = None

"""The in-memory store's tables and what every repository over them shares."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from accord.domain.ports import Clock
from accord.domain.records import (
    ApiTokenRecord,
    AuditEvent,
    LinkRecord,
    MembershipRecord,
    OneTimeTokenRecord,
    OperationRecord,
    OrganizationRecord,
    OutboxMessage,
    UserRecord,
    VerificationRecord,
)

PLACEHOLDER_NAME = "(held by reconcile)"


@dataclass
class Tables:
    """Everything stored, as the database would hold it."""

    users: dict[UUID, UserRecord] = field(default_factory=dict)
    links: dict[tuple[UUID, str], LinkRecord] = field(default_factory=dict)
    memberships: dict[tuple[UUID, UUID], MembershipRecord] = field(default_factory=dict)
    organizations: dict[UUID, OrganizationRecord] = field(default_factory=dict)
    operations: dict[UUID, OperationRecord] = field(default_factory=dict)
    audit: list[AuditEvent] = field(default_factory=list)
    audit_at: list[datetime] = field(default_factory=list)  # when each of ``audit`` was recorded
    outbox: dict[int, OutboxMessage] = field(default_factory=dict)
    outbox_due: dict[int, datetime] = field(default_factory=dict)
    tokens: dict[int, OneTimeTokenRecord] = field(default_factory=dict)
    api_tokens: dict[UUID, tuple[str, ApiTokenRecord]] = field(default_factory=dict)
    # id → (the link's digest, once mailed; the pending registration)
    verifications: dict[UUID, tuple[str | None, VerificationRecord]] = field(default_factory=dict)


class Repository:
    def __init__(self, tables: Tables, clock: Clock, ids: itertools.count[int]) -> None:
        self.t = tables
        self.now = clock.now
        self.ids = ids

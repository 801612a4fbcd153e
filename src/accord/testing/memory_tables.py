"""The in-memory store's tables and what every repository over them shares."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from accord.domain.invitation_store import InvitationRecord
from accord.domain.model import OperationKind, OperationState, RecoveryPoint
from accord.domain.ports import Clock
from accord.domain.records import (
    ApiTokenRecord,
    AuditEntry,
    ChangeEvent,
    LinkRecord,
    MailRecord,
    MembershipRecord,
    OneTimeTokenRecord,
    OperationRecord,
    OrganizationRecord,
    OutboxMessage,
    UserRecord,
    VerificationRecord,
)
from accord.domain.scim_store import ScimGroupGrant, ScimGroupRecord, ScimUserRecord
from accord.domain.webhooks import WebhookDelivery, WebhookEndpoint

PLACEHOLDER_NAME = "(held by reconcile)"


@dataclass
class Tables:
    """Everything stored, as the database would hold it."""

    users: dict[UUID, UserRecord] = field(default_factory=dict)
    links: dict[tuple[UUID, str], LinkRecord] = field(default_factory=dict)
    memberships: dict[tuple[UUID, UUID], MembershipRecord] = field(default_factory=dict)
    organizations: dict[UUID, OrganizationRecord] = field(default_factory=dict)
    operations: dict[UUID, OperationRecord] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    outbox: dict[int, OutboxMessage] = field(default_factory=dict)
    outbox_due: dict[int, datetime] = field(default_factory=dict)
    tokens: dict[int, OneTimeTokenRecord] = field(default_factory=dict)
    api_tokens: dict[UUID, tuple[str, ApiTokenRecord]] = field(default_factory=dict)
    # id → (the link's digest, once mailed; the pending registration)
    verifications: dict[UUID, tuple[str | None, VerificationRecord]] = field(default_factory=dict)
    # id → (the live link's digest, once mailed; the invitation)
    invitations: dict[UUID, tuple[str | None, InvitationRecord]] = field(default_factory=dict)
    mailbox: dict[int, MailRecord] = field(default_factory=dict)
    scim_users: dict[UUID, ScimUserRecord] = field(default_factory=dict)
    events: list[ChangeEvent] = field(default_factory=list)  # in seq order
    # (subject type, subject id) → (version, latest document)
    subject_versions: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    feed_head: int = 0  # the last position assigned
    feed_horizon: int = 0  # the last position retention deleted
    scim_groups: dict[UUID, ScimGroupRecord] = field(default_factory=dict)
    scim_group_grants: dict[tuple[UUID, str], ScimGroupGrant] = field(default_factory=dict)
    webhook_endpoints: dict[UUID, WebhookEndpoint] = field(default_factory=dict)
    # id → (the delivery, until when it is leased)
    webhook_deliveries: dict[int, tuple[WebhookDelivery, datetime | None]] = field(
        default_factory=dict
    )


class Repository:
    def __init__(self, tables: Tables, clock: Clock, ids: itertools.count[int]) -> None:
        self.t = tables
        self.now = clock.now
        self.ids = ids


def open_claims(tables: Tables, organization_id: UUID) -> int:
    """Open user creations holding a place in the organization (not those being undone)."""
    return sum(
        1
        for op in tables.operations.values()
        if op.organization_id == organization_id
        and op.state == OperationState.OPEN
        and op.kind == OperationKind.CREATE_USER
        and op.recovery_point != RecoveryPoint.COMPENSATING
    )

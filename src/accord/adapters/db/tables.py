"""The schema, as SQLAlchemy Core tables. Alembic migrations must produce exactly this
(tests/integration/test_migrations.py compares them).

Every invariant that PostgreSQL can hold is held here, by a named constraint; adapters/db/errors.py
turns a violation of each name into the domain error it means.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from accord.domain import model

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _one_of(column: str, values: type[StrEnum]) -> str:
    allowed = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({allowed})"


def _timestamps() -> list[Column]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("email", Text, nullable=True),  # NULL once deprovisioned (see former_email)
    Column("full_name", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("is_platform_admin", Boolean, nullable=False, server_default=text("false")),
    Column("require_password_change", Boolean, nullable=False, server_default=text("false")),
    Column("created_by", Text, nullable=True),
    Column("version", Integer, nullable=False, server_default=text("1")),
    *_timestamps(),
    # A deprovisioned user's address, kept for its history; the address itself is free again.
    Column("former_email", Text, nullable=True),
    UniqueConstraint("email"),
    CheckConstraint("(email IS NULL) = (status = 'disabled')", name="email_retired_when_disabled"),
    CheckConstraint(_one_of("status", model.UserStatus), name="status"),
    # The application normalizes (services never store another spelling); this makes it a fact.
    CheckConstraint(
        "email = lower(btrim(email)) AND email IS NFKC NORMALIZED", name="email_normalized"
    ),
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("slug", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("owner_user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")),
    Column("plan_type", Text, nullable=False, server_default=text("'trial'")),
    Column("max_users", Integer, nullable=False, server_default=text("10")),
    Column("status", Text, nullable=False, server_default=text("'trial'")),
    Column("settings", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("version", Integer, nullable=False, server_default=text("1")),
    *_timestamps(),
    UniqueConstraint("slug"),
    CheckConstraint(_one_of("kind", model.OrganizationKind), name="kind"),
    CheckConstraint(_one_of("status", model.OrganizationStatus), name="status"),
    CheckConstraint("max_users >= 1", name="max_users_positive"),
    CheckConstraint("slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'", name="slug_format"),
    # G4 as a database fact: one personal organization per owner.
    Index(
        "uq_organizations_personal_owner",
        "owner_user_id",
        unique=True,
        postgresql_where=text("kind = 'personal'"),
    ),
)

idp_links = Table(
    "idp_links",
    metadata,
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    Column("provider", Text, nullable=False),
    Column("remote_id", Text, nullable=False),
    Column("created_by_accord", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("user_id", "provider"),
    UniqueConstraint("provider", "remote_id"),
)

memberships = Table(
    "memberships",
    metadata,
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    Column(
        "organization_id",
        UUID(as_uuid=True),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("role", Text, nullable=False),
    Column("permissions", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("user_id", "organization_id"),
    CheckConstraint(_one_of("role", model.Role), name="role"),
    Index(None, "organization_id"),
)

operations = Table(
    "operations",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("caller", Text, nullable=False),
    Column("idempotency_key", Text, nullable=True),
    Column("request_digest", Text, nullable=False),
    Column("request", JSONB, nullable=False),  # the request without its secrets
    Column("sealed_secrets", LargeBinary, nullable=True),  # encrypted (adapters/sealing.py)
    Column("flow_state", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("state", Text, nullable=False),
    Column("recovery_point", Text, nullable=False),
    Column("user_id", UUID(as_uuid=True), nullable=True),  # the subject; no FK: it may be removed
    Column("organization_id", UUID(as_uuid=True), nullable=True),
    Column("remote_id", Text, nullable=True),
    Column("created_remote", Boolean, nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("deadline_at", DateTime(timezone=True), nullable=False),
    Column("result", JSONB, nullable=True),
    Column("error", JSONB, nullable=True),
    *_timestamps(),
    UniqueConstraint("caller", "idempotency_key"),
    CheckConstraint(_one_of("kind", model.OperationKind), name="kind"),
    CheckConstraint(_one_of("state", model.OperationState), name="state"),
    CheckConstraint(_one_of("recovery_point", model.RecoveryPoint), name="recovery_point"),
    # In the order workers lease in (never postponed first): no sort of every open operation.
    Index(
        "ix_operations_open",
        text("next_attempt_at NULLS FIRST"),
        postgresql_where=text("state = 'open'"),
    ),
    # The seat count's open claims of one organization (adapters/db/operations.open_claims).
    Index(
        "ix_operations_open_organization",
        "organization_id",
        postgresql_where=text("state = 'open'"),
    ),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("subject_user_id", UUID(as_uuid=True), nullable=True),
    Column("subject_email", Text, nullable=True),
    Column("organization_id", UUID(as_uuid=True), nullable=True),
    Column("operation_id", UUID(as_uuid=True), nullable=True),
    Column("data", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # Who was authenticated (NULL on events from before revision 0006) and whom it claimed
    # to act for (X-Acting-User): a claim, never the principal.
    Column("by_kind", Text, nullable=True),
    Column("by_token_id", UUID(as_uuid=True), nullable=True),
    Column("by_scope", Text, nullable=True),
    Column("by_user_id", UUID(as_uuid=True), nullable=True),
    Column("claimed_actor", Text, nullable=True),
    Index(None, "subject_user_id"),
    Index(None, "operation_id"),
    Index("ix_audit_events_at_id", "at", "id"),
    Index("ix_audit_events_organization_at", "organization_id", "at", "id"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("dedupe_key", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("payload", JSONB, nullable=False),  # never a secret: links are minted at send time
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_error", Text, nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("dedupe_key"),
    Index("ix_outbox_unsent", "next_attempt_at", postgresql_where=text("sent_at IS NULL")),
)

# -- the local identity provider's own store --------------------------------------------------
# Separate from `users`: the local IdP is an IdP like the others, so drift between it and the
# application's rows can exist and be found, exactly as with a vendor.

local_identities = Table(
    "local_identities",
    metadata,
    Column("id", Text, primary_key=True),
    Column("email", Text, nullable=False),
    Column("full_name", Text, nullable=True),
    Column("accord_user_id", Text, nullable=True),
    *_timestamps(),
    UniqueConstraint("email"),
    # Suspension: sign-in refused while false; login tokens issued before the revocation fail.
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("sessions_revoked_at", DateTime(timezone=True), nullable=True),
)

local_credentials = Table(
    "local_credentials",
    metadata,
    Column(
        "identity_id",
        Text,
        ForeignKey("local_identities.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # argon2id for chosen passwords; "sha256$<hex>" for generated temporary ones (see G9).
    Column("secret_hash", Text, nullable=False),
    Column("is_temporary", Boolean, nullable=False, server_default=text("false")),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

one_time_tokens = Table(
    "one_time_tokens",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("digest", Text, nullable=False),  # SHA-256 of the token; the token itself is mailed
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    Column("purpose", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("digest"),
    CheckConstraint(_one_of("purpose", model.TokenPurpose), name="purpose"),
)

# Registrations waiting for their e-mail to be proven (services/verification.py).
email_verifications = Table(
    "email_verifications",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("email", Text, nullable=False),
    Column("request", JSONB, nullable=False),  # the registration without its password
    Column("sealed_secrets", LargeBinary, nullable=False),  # the chosen password, sealed (G9)
    # SHA-256 of the mailed link's token, set when the mail is sent; the token is only mailed.
    Column("digest", Text, nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("digest"),
    CheckConstraint("digest ~ '^[0-9a-f]{64}$'", name="digest_sha256"),
    Index(None, "email"),
)

# The throttle's moving windows (adapters/db/rate_limits.py): one row per counted attempt, in
# seconds since the epoch; a row outlives its window only until housekeeping sweeps it.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("key", Text, nullable=False),
    Column("hit_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index(None, "key", "hit_at"),
    Index(None, "expires_at"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("digest", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column(
        "organization_id",
        UUID(as_uuid=True),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("digest"),
    CheckConstraint(_one_of("scope", model.TokenScope), name="scope"),
    CheckConstraint(
        "(scope = 'platform') = (organization_id IS NULL)", name="organization_matches_scope"
    ),
)

invitations = Table(
    "invitations",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "organization_id",
        UUID(as_uuid=True),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("email", Text, nullable=False),  # normalized, as a user's
    Column("role", Text, nullable=False),
    Column("permissions", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("invited_by", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    # SHA-256 of the live link's token, set when its mail is sent; the token is only mailed.
    Column("digest", Text, nullable=True),
    Column("sends", Integer, nullable=False, server_default=text("1")),
    Column("accept_operation_id", UUID(as_uuid=True), nullable=True),
    Column(
        "accepted_user_id",
        UUID(as_uuid=True),
        ForeignKey("users.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("accepted_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    *_timestamps(),
    UniqueConstraint("digest"),
    CheckConstraint("digest ~ '^[0-9a-f]{64}$'", name="digest_sha256"),
    CheckConstraint(_one_of("status", model.InvitationStatus), name="status"),
    CheckConstraint(_one_of("role", model.Role), name="role"),
    # One pending invitation per address and organization: a second invite returns the first.
    Index(
        "uq_invitations_pending_email",
        "organization_id",
        "email",
        unique=True,
        postgresql_where=text("status = 'pending'"),
    ),
)

# The embedded mailbox (adapters/mail/mailbox.py): mail kept here when no SMTP server is
# configured, read with `accord mail list`; housekeeping deletes it after mailbox_retention_days.
mailbox = Table(
    "mailbox",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("recipient", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index(None, "recipient"),
    Index(None, "created_at"),
)

# SCIM (entrypoints/scim, services/scim.py): a SCIM client's users, one row per userName within
# an organization, claimed before the engine creates the user and bound to it afterwards.
scim_users = Table(
    "scim_users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "organization_id",
        UUID(as_uuid=True),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    ),
    Column("user_name", Text, nullable=False),
    Column("user_name_key", Text, nullable=False),  # domain/scim_store.user_name_key
    Column("external_id", Text, nullable=True),
    Column("creation_key", Text, nullable=False),
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    *_timestamps(),
    UniqueConstraint("organization_id", "user_name_key"),
    UniqueConstraint("organization_id", "user_id"),
)

# The change feed (domain/changes.py, adapters/db/events.py). Writers insert events with no
# position; the assigner numbers the committed ones after commit, in seq order.
change_events = Table(
    "change_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("id", UUID(as_uuid=True), nullable=False),
    Column("position", BigInteger, nullable=True),
    Column("type", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("subject_type", Text, nullable=False),
    Column("subject_id", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("organization_id", UUID(as_uuid=True), nullable=True),
    Column("user_id", UUID(as_uuid=True), nullable=True),
    Column("invitation_id", UUID(as_uuid=True), nullable=True),
    Column(
        "organization_ids",
        ARRAY(UUID(as_uuid=True)),
        nullable=False,
        server_default=text("'{}'::uuid[]"),
    ),
    Column("data", JSONB, nullable=True),
    Column("changed", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("operation_id", UUID(as_uuid=True), nullable=True),
    Column("idempotency_key", Text, nullable=True),
    UniqueConstraint("id"),
    UniqueConstraint("position"),
    Index("ix_change_events_unassigned", "seq", postgresql_where=text("position IS NULL")),
    Index("ix_change_events_organization_ids", "organization_ids", postgresql_using="gin"),
)

# Each subject's latest version and document: the upsert's row lock orders its writers.
subject_versions = Table(
    "subject_versions",
    metadata,
    Column("subject_type", Text, nullable=False),
    Column("subject_id", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("document", JSONB, nullable=True),
    PrimaryKeyConstraint("subject_type", "subject_id"),
)

# One row: the last position assigned, and the last one retention deleted (the horizon).
change_feed_head = Table(
    "change_feed_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_position", BigInteger, nullable=False),
    Column("horizon", BigInteger, nullable=False, server_default=text("0")),
    CheckConstraint("id = 1", name="single_row"),
)

# A SCIM client's groups (services/scim_groups.py): displayName unique case-insensitively within
# the organization; the members are accord users the same client provisioned.
scim_groups = Table(
    "scim_groups",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "organization_id",
        UUID(as_uuid=True),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("display_name", Text, nullable=False),
    Column("display_name_key", Text, nullable=False),  # domain/scim_store.display_name_key
    Column("external_id", Text, nullable=True),
    *_timestamps(),
    UniqueConstraint("organization_id", "display_name_key"),
)

scim_group_members = Table(
    "scim_group_members",
    metadata,
    Column(
        "group_id",
        UUID(as_uuid=True),
        ForeignKey("scim_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "user_id",
        UUID(as_uuid=True),
        ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, nullable=False),  # the order the members were written in
    Index(None, "user_id"),
)

# What membership of a SCIM group of that displayName gives (``accord scim-group map``): kept by
# name, so it can be set before the IdP pushes the group and survives the group's re-creation.
scim_group_grants = Table(
    "scim_group_grants",
    metadata,
    Column(
        "organization_id",
        UUID(as_uuid=True),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("display_name_key", Text, primary_key=True),  # domain/scim_store.display_name_key
    Column("display_name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("permissions", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    *_timestamps(),
    CheckConstraint(_one_of("role", model.Role), name="role"),
)


# Webhook endpoints (Standard Webhooks): ``cursor`` is the feed position fanned out so far.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "organization_id",
        UUID(as_uuid=True),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("url", Text, nullable=False),
    Column("event_types", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("sealed_secrets", LargeBinary, nullable=False),  # G9: the signing secrets, sealed
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("disabled_reason", Text, nullable=True),
    Column("cursor", BigInteger, nullable=False, server_default=text("0")),
    Column("failing_since", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "endpoint_id",
        UUID(as_uuid=True),
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("subject", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("leased_until", DateTime(timezone=True), nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_latency_ms", Float, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("endpoint_id", "event_id", name="one_delivery_per_event"),
    CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="known_delivery_status"),
    Index(
        "ix_webhook_deliveries_pending",
        "endpoint_id",
        "subject",
        "position",
        postgresql_where=text("status = 'pending'"),
    ),
)

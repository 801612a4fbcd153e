"""change events: the gap-free change feed (events, subject versions, the feed's head)

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-02 15:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column(
            "occurred_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("subject_type", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("organization_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("invitation_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column(
            "organization_ids",
            postgresql.ARRAY(postgresql.UUID(as_uuid=True)),
            server_default=sa.text("'{}'::uuid[]"),
            nullable=False,
        ),
        sa.Column("data", postgresql.JSONB(), nullable=True),
        sa.Column(
            "changed",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column("operation_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_change_events")),
        sa.UniqueConstraint("id", name=op.f("uq_change_events_id")),
        sa.UniqueConstraint("position", name=op.f("uq_change_events_position")),
    )
    op.create_index(
        "ix_change_events_unassigned",
        "change_events",
        ["seq"],
        postgresql_where=sa.text("position IS NULL"),
    )
    op.create_index(
        "ix_change_events_organization_ids",
        "change_events",
        ["organization_ids"],
        postgresql_using="gin",
    )
    op.create_table(
        "subject_versions",
        sa.Column("subject_type", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("document", postgresql.JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("subject_type", "subject_id", name=op.f("pk_subject_versions")),
    )
    op.create_table(
        "change_feed_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.Column("horizon", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_change_feed_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_feed_head")),
    )


def downgrade() -> None:
    op.drop_table("change_feed_head")
    op.drop_table("subject_versions")
    op.drop_index("ix_change_events_organization_ids", table_name="change_events")
    op.drop_index("ix_change_events_unassigned", table_name="change_events")
    op.drop_table("change_events")

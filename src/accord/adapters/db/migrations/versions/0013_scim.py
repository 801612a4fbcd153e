"""scim: SCIM tokens (an api_tokens scope) and the SCIM clients' users

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 15:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_api_tokens_scope"), "api_tokens", type_="check")
    op.create_check_constraint(
        op.f("ck_api_tokens_scope"), "api_tokens", "scope IN ('platform', 'organization', 'scim')"
    )
    op.create_table(
        "scim_users",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("organization_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("user_name_key", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("creation_key", sa.Text(), nullable=False),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_scim_users_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_scim_users_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_users")),
        sa.UniqueConstraint(
            "organization_id", "user_id", name=op.f("uq_scim_users_organization_id_user_id")
        ),
        sa.UniqueConstraint(
            "organization_id",
            "user_name_key",
            name=op.f("uq_scim_users_organization_id_user_name_key"),
        ),
    )


def downgrade() -> None:
    op.drop_table("scim_users")
    op.execute("DELETE FROM api_tokens WHERE scope = 'scim'")
    op.drop_constraint(op.f("ck_api_tokens_scope"), "api_tokens", type_="check")
    op.create_check_constraint(
        op.f("ck_api_tokens_scope"), "api_tokens", "scope IN ('platform', 'organization')"
    )

"""local identity enabled: the built-in IdP can refuse a suspended identity's sign-in

A suspended user's local identity is ``enabled = false`` (sign-in refused), and
``sessions_revoked_at`` says from when on the login tokens issued before it stop working
(suspension ends the sessions; reactivation does not bring them back).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "local_identities",
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.text("true")),
    )
    op.add_column(
        "local_identities",
        sa.Column("sessions_revoked_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("local_identities", "sessions_revoked_at")
    op.drop_column("local_identities", "enabled")

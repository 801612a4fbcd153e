"""mailbox: mail kept in the database when no SMTP server is configured

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 13:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailbox")),
    )
    op.create_index(op.f("ix_mailbox_recipient"), "mailbox", ["recipient"])
    op.create_index(op.f("ix_mailbox_created_at"), "mailbox", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_mailbox_created_at"), table_name="mailbox")
    op.drop_index(op.f("ix_mailbox_recipient"), table_name="mailbox")
    op.drop_table("mailbox")

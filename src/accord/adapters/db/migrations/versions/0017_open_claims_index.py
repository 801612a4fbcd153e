"""open claims index: a create's seat count finds its organization's open operations by index

``lock_seats`` counts the open ``create_user`` operations of one organization on every create,
member add and invitation. With no index on ``operations.organization_id`` that count read
every open operation of every organization (through ``ix_operations_open``) and, in the
generic plan PostgreSQL may cache for the prepared statement, every operation ever kept: a
Seq Scan over a table that grows by one row per create (bench/p2_scale.py, issue 12 P2).
This partial index holds only open operations (it shrinks back as they finish), so its
upkeep is one entry per operation while it runs.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_operations_open_organization",
        "operations",
        ["organization_id"],
        postgresql_where=sa.text("state = 'open'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_operations_open_organization",
        table_name="operations",
        postgresql_where=sa.text("state = 'open'"),
    )

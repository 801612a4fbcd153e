"""lease order index: workers lease due operations in the index's order, not after a sort

``lease_due`` takes the open, unleased, due operations ``ORDER BY next_attempt_at NULLS FIRST``
(those never postponed first). ``ix_operations_open`` kept ``next_attempt_at`` in the default
order (NULLS LAST), so every lease read and sorted every open operation before locking the few
it takes: 10.5 ms at 10,000 open operations, on each of the thousands of leases that resuming
them takes (bench/p4_resume.py, issue 12 P4). In the lease's own order the index gives the first
rows at once (0.3 ms); ranges on ``next_attempt_at`` still use it.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 00:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

OPEN = sa.text("state = 'open'")


def upgrade() -> None:
    op.drop_index("ix_operations_open", table_name="operations", postgresql_where=OPEN)
    op.create_index(
        "ix_operations_open",
        "operations",
        [sa.text("next_attempt_at NULLS FIRST")],
        postgresql_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_operations_open", table_name="operations", postgresql_where=OPEN)
    op.create_index("ix_operations_open", "operations", ["next_attempt_at"], postgresql_where=OPEN)

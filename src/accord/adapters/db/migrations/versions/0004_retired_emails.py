"""retired e-mails: a deprovisioned user's row gives its address up (former_email)

A deprovisioned row used to keep its e-mail, and the next create or registration for that
address reclaimed the row: its id, memberships and organizations passed to a stranger. Now the
row keeps its history under ``former_email`` and ``email`` is NULL, so the unique index frees
the address for a new person. Existing deprovisioned (``disabled``) rows are retired the same
way, and any membership they still hold is removed (deprovisioning removes them too).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("former_email", sa.Text(), nullable=True))
    op.alter_column("users", "email", existing_type=sa.Text(), nullable=True)
    op.execute(
        "UPDATE users SET former_email = email, email = NULL, version = version + 1, "
        "updated_at = now() WHERE status = 'disabled'"
    )
    op.execute(
        "DELETE FROM memberships m USING users u WHERE u.id = m.user_id AND u.status = 'disabled'"
    )
    op.create_check_constraint(
        op.f("ck_users_email_retired_when_disabled"),
        "users",
        "(email IS NULL) = (status = 'disabled')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_users_email_retired_when_disabled"), "users", type_="check")
    # A retired address that a new person took meanwhile stays with the new row.
    op.execute(
        "UPDATE users u SET email = u.former_email WHERE u.email IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM users o WHERE o.email = u.former_email)"
    )
    op.execute("UPDATE users SET email = 'retired-' || id::text || '@invalid' WHERE email IS NULL")
    op.alter_column("users", "email", existing_type=sa.Text(), nullable=False)
    op.drop_column("users", "former_email")

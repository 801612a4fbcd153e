"""webhook operations: registering a webhook endpoint is an operation (so a key replays it)

The operation kinds' check constraint widens by ``create_webhook``. Narrowing it again
(downgrade) refuses while an operation of that kind is kept.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 19:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_BEFORE = (
    "create_user",
    "register",
    "deprovision",
    "accept_invitation",
    "change_email",
    "suspend",
    "reactivate",
    "delete_organization",
)
_AFTER = (*_BEFORE, "create_webhook")


def _replace(values: tuple[str, ...]) -> None:
    name = op.f("ck_operations_kind")
    op.drop_constraint(name, "operations", type_="check")
    allowed = ", ".join(f"'{v}'" for v in values)
    op.create_check_constraint(name, "operations", f"kind IN ({allowed})")


def upgrade() -> None:
    _replace(_AFTER)


def downgrade() -> None:
    _replace(_BEFORE)

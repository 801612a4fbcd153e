"""lifecycle vocabulary: the states, operation kinds and token purposes the lifecycle needs

The lifecycle (suspension, e-mail changes, invitations, organization offboarding) adds a user
state (``suspended``), operation kinds and a one-time token purpose. The check constraints that
hold those columns to their vocabulary widen here, once, so that each flow's own tables come in
their own revisions. Narrowing them again (downgrade) refuses while a row uses a new value.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 12:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BEFORE = {
    ("users", "status"): ("provisioning", "pending", "active", "disabled"),
    ("operations", "kind"): ("create_user", "register", "deprovision"),
    ("one_time_tokens", "purpose"): ("password_setup",),
}
_AFTER = {
    ("users", "status"): ("provisioning", "pending", "active", "suspended", "disabled"),
    ("operations", "kind"): (
        "create_user",
        "register",
        "deprovision",
        "accept_invitation",
        "change_email",
        "suspend",
        "reactivate",
        "delete_organization",
    ),
    ("one_time_tokens", "purpose"): ("password_setup", "email_change"),
}


def _replace(vocabulary: dict[tuple[str, str], tuple[str, ...]]) -> None:
    for (table, column), values in vocabulary.items():
        name = op.f(f"ck_{table}_{column}")
        op.drop_constraint(name, table, type_="check")
        allowed = ", ".join(f"'{v}'" for v in values)
        op.create_check_constraint(name, table, f"{column} IN ({allowed})")


def upgrade() -> None:
    _replace(_AFTER)


def downgrade() -> None:
    _replace(_BEFORE)

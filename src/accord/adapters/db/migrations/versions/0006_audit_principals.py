"""audit principals: who was authenticated, apart from whom it claimed to act for; e-mails folded
with NFKC before case folding

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 02:00:00.000000

The e-mail step re-spells every stored address the way ``accord.domain.emails`` now does
(NFKC, case folding). Two rows that become one address are two accounts of what a person reads
as one: the migration does not pick one of them. It stops, changes nothing, and names them;
deprovision or re-address one of each pair (``accord users ...``), then upgrade again.
Addresses that mix scripts confusably (refused for new users) are only logged.
"""

from __future__ import annotations

import logging
import unicodedata
from collections import defaultdict

import sqlalchemy as sa
from alembic import op
from confusable_homoglyphs import confusables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# Tables whose e-mail column holds accord's normalized spelling (unique where marked).
EMAIL_COLUMNS = (("users", True), ("local_identities", True), ("email_verifications", False))


def fold(email: str) -> str:
    """The spelling of revision 0006 (frozen here: later rules get a migration of their own)."""
    folded = unicodedata.normalize("NFKC", email.strip()).casefold()
    return unicodedata.normalize("NFKC", folded).lower()


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("by_kind", sa.Text(), nullable=True))
    op.add_column("audit_events", sa.Column("by_token_id", sa.UUID(), nullable=True))
    op.add_column("audit_events", sa.Column("by_scope", sa.Text(), nullable=True))
    op.add_column("audit_events", sa.Column("by_user_id", sa.UUID(), nullable=True))
    op.add_column("audit_events", sa.Column("claimed_actor", sa.Text(), nullable=True))
    op.create_index("ix_audit_events_at_id", "audit_events", ["at", "id"])
    op.create_index(
        "ix_audit_events_organization_at", "audit_events", ["organization_id", "at", "id"]
    )
    for table, unique in EMAIL_COLUMNS:
        refold_emails(table, unique=unique)
    op.drop_constraint(op.f("ck_users_email_normalized"), "users", type_="check")
    op.create_check_constraint(
        op.f("ck_users_email_normalized"),
        "users",
        "email = lower(btrim(email)) AND email IS NFKC NORMALIZED",
    )


def refold_emails(table: str, *, unique: bool) -> None:
    """Re-spell ``table.email``; raise (changing nothing) if two rows would become one."""
    conn = op.get_bind()
    rows = conn.execute(sa.text(f"SELECT id, email FROM {table}")).all()
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        groups[fold(row.email)].append((str(row.id), row.email))
    collisions = {k: v for k, v in groups.items() if len(v) > 1}
    if unique and collisions:
        described = "; ".join(
            f"{folded!r} <- " + ", ".join(f"{email!r} (id {rid})" for rid, email in members)
            for folded, members in sorted(collisions.items())
        )
        raise RuntimeError(
            f"{table}: {len(collisions)} e-mail address(es) would fold to one spelling "
            f"(NFKC, case folding): {described}. Nothing was changed. Deprovision or "
            "re-address all but one of each group, then run `accord db upgrade` again."
        )
    for folded, members in groups.items():
        for row_id, email in members:
            if email != folded:
                log.warning("%s %s: e-mail %r is now spelled %r", table, row_id, email, folded)
                conn.execute(
                    sa.text(f"UPDATE {table} SET email = :email WHERE id = :id"),
                    {"email": folded, "id": row_id},
                )
            if table == "users" and confusables.is_dangerous(folded.rpartition("@")[0]):
                log.warning(
                    "users %s: e-mail %r mixes scripts with look-alike letters; new accounts "
                    "like it are refused (email_confusable): check whom it belongs to",
                    row_id,
                    folded,
                )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_users_email_normalized"), "users", type_="check")
    op.create_check_constraint(
        op.f("ck_users_email_normalized"),
        "users",
        "email = lower(btrim(email)) AND email IS NFC NORMALIZED",
    )
    op.drop_index("ix_audit_events_organization_at", table_name="audit_events")
    op.drop_index("ix_audit_events_at_id", table_name="audit_events")
    for column in ("claimed_actor", "by_user_id", "by_scope", "by_token_id", "by_kind"):
        op.drop_column("audit_events", column)

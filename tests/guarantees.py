"""Checks of DESIGN.md's guarantees against the database and the IdP, for any test to call
once the system has settled."""

from __future__ import annotations

from sqlalchemy import text

from accord.bootstrap import Accord


async def assert_guarantees(accord: Accord) -> None:
    """G1 to G5 and G7 hold right now."""
    remote = {u.remote_id: u async for u in accord.idp.iter_users(page_size=500)}
    async with accord.db.transaction() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT u.id, u.email, u.status, l.remote_id, l.created_by_accord "
                    "FROM users u LEFT JOIN idp_links l ON l.user_id = u.id "
                    "AND l.provider = :p"
                ),
                {"p": accord.idp.name},
            )
        ).all()
        over_limit = (
            await conn.execute(
                text(
                    "SELECT o.slug FROM organizations o WHERE o.max_users < "
                    "(SELECT count(*) FROM memberships m WHERE m.organization_id = o.id)"
                )
            )
        ).all()
        personal = (
            await conn.execute(
                text(
                    "SELECT owner_user_id FROM organizations WHERE kind = 'personal' "
                    "GROUP BY owner_user_id HAVING count(*) > 1"
                )
            )
        ).all()
        open_ops = (
            await conn.execute(text("SELECT count(*) FROM operations WHERE state = 'open'"))
        ).scalar_one()
    emails = [r.email for r in rows]
    assert len(emails) == len(set(emails)), "G1: two rows for one e-mail"
    remote_emails = [u.email for u in remote.values()]
    assert len(remote_emails) == len(set(remote_emails)), "G1: two IdP users for one e-mail"
    for row in rows:
        if row.status in ("pending", "active"):
            assert row.remote_id in remote, f"G2: {row.email} has no IdP user"
            assert remote[row.remote_id].email == row.email, f"G2: {row.email} e-mail differs"
    linked = {r.remote_id for r in rows if r.remote_id}
    if open_ops == 0:
        orphans = [u.email for rid, u in remote.items() if rid not in linked]
        assert orphans == [], f"G3: IdP users without rows: {orphans}"
        stuck = [r.email for r in rows if r.status == "provisioning"]
        assert stuck == [], f"G7: rows left half-created: {stuck}"
    assert personal == [], "G4: an owner with two personal organizations"
    assert over_limit == [], "G5: an organization over its max_users"

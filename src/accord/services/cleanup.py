"""cleanup-orphans: the seeds' hand-run cleanup script, done safely.

A row "never finished" was left by a request that died: in ``provisioning`` with no operation
running, or pending/active but never linked to an identity of this provider. Each is looked up
in the IdP by its e-mail first: a user who has a working identity there is never touched (that
is an unlinked match, which ``reconcile --fix`` links). The others are listed, and removed only
when asked, one transaction and one audit event each, each re-checked under its row lock.
"""

from __future__ import annotations

from typing import Any

from accord.domain.drift import Action, DriftClass, Finding, ReconcileRunning
from accord.domain.emails import normalize_email
from accord.services import repairs
from accord.services.context import Context


async def cleanup_orphans(
    accord: Context, *, email: str | None = None, remove: bool = False, actor: str = "cleanup"
) -> list[dict[str, Any]]:
    """The never-finished rows (of ``email`` only, if given), each with what was done to it."""
    address = normalize_email(email) if email else None
    session = accord.store.drift_session(accord.idp.name)
    if not await session.try_lock():  # reconcile and cleanup never repair at the same time
        raise ReconcileRunning("A reconcile or cleanup is running; run this when it has finished.")
    try:
        candidates = session.unfinished_rows(address)
        return [await _settle(accord, dict(row), remove, actor) async for row in candidates]
    finally:
        await session.close()


async def _settle(accord: Context, row: dict[str, Any], remove: bool, actor: str) -> dict[str, Any]:
    item = {"email": row["email"], "user_id": row["user_id"], "status": row["status"]}
    identity = await accord.idp.find_by_email(row["email"])
    if identity is not None:
        note = "kept: it has an IdP identity (`accord reconcile --fix` links it)"
        return {**item, "action": "kept", "remote_id": identity.remote_id, "note": note}
    if not remove:
        return {**item, "action": "would_remove", "note": "run again with --yes to remove it"}
    finding = Finding(DriftClass.ORPHAN_ROWS, row["email"], dict(item), Action.REMOVE_ROW)
    try:
        await repairs.remove_unfinished_row(accord, finding, actor, action="user.orphan_removed")
    except repairs.Changed as changed:
        return {**item, "action": "kept", "note": f"kept: {changed}"}
    return {**item, "action": "removed", "note": "removed, with an audit event"}

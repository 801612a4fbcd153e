"""E-mail changes through the Supabase emulator under 5xx and ghost writes: the scenario that
tests/engine/test_email_change_faults.py runs with a small N and bench/email_faults.py with
1,000. Users are seeded set-wise (in SQL and straight into the emulator's store): the
changes are what is measured, not the creates."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import text

from accord.adapters.idp.supabase import SupabaseProvider
from accord.bootstrap import Accord, build
from accord.config import Settings
from accord.domain import errors
from accord.emulators.faults import FaultConfig
from accord.emulators.supabase import DEFAULT_SERVICE_ROLE_KEY, create_app
from accord.services import worker
from accord.services.organizations import NewOrganization, create_organization
from accord.services.profile import ProfileChange, update_user
from accord.services.reconcile import ReconcileOptions, reconcile
from accord.testing import FakeMailer
from accord.testing.servers import serve_in_thread
from tests.engine.conftest import PLATFORM
from tests.guarantees import assert_guarantees
from tests.mailbox import make_everything_due
from tests.patience import PATIENCE


@asynccontextmanager
async def supabase_accord(settings: Settings, seed: int) -> AsyncIterator[tuple[Accord, Any, str]]:
    """accord over a Supabase emulator on loopback; the emulator app and its URL."""
    app = create_app(faults=FaultConfig(seed=seed))
    with serve_in_thread(app) as base_url:
        provider = SupabaseProvider(base_url, DEFAULT_SERVICE_ROLE_KEY, timeout_seconds=PATIENCE)
        accord = build(settings, idp=provider)
        try:
            yield accord, app, base_url
        finally:
            await accord.aclose()


async def seed_users(accord: Accord, emulator: Any, n: int) -> list[str]:
    """``n`` active users in one organization, each linked to its emulator identity."""
    org = await create_organization(
        accord, NewOrganization(name="Faults", max_users=max(n, 1)), caller=PLATFORM
    )
    ids = [str(uuid.uuid4()) for _ in range(n)]
    rows = [
        {"id": i, "email": f"user{k}@faults.example", "n": f"User {k}"} for k, i in enumerate(ids)
    ]
    async with accord.db.transaction() as conn:
        await conn.execute(
            text(
                "INSERT INTO users (id, email, full_name, status, created_by) "
                "VALUES (:id, :email, :n, 'active', 'seed')"
            ),
            rows,
        )
        await conn.execute(
            text(
                "INSERT INTO idp_links (user_id, provider, remote_id, created_by_accord) "
                "VALUES (CAST(:id AS uuid), 'supabase', CAST(:id AS text), true)"
            ),
            rows,
        )
        await conn.execute(
            text(
                "INSERT INTO memberships (user_id, organization_id, role) "
                "VALUES (:id, :org, 'org_user')"
            ),
            [{"id": r["id"], "org": org["id"]} for r in rows],
        )
    for row in rows:
        emulator.state.admin.store.add(
            {
                "id": row["id"],
                "email": row["email"],
                "email_confirm": True,
                "user_metadata": {"full_name": row["n"]},
                "app_metadata": {"accord_user_id": row["id"]},
            }
        )
    return ids


async def _change(accord: Accord, user_id: str, k: int, counts: dict[str, int]) -> None:
    change = ProfileChange(email=f"changed{k}@faults.example")
    try:
        await update_user(accord, user_id, change, caller=PLATFORM)
        counts["done_at_once"] += 1
    except errors.OperationPending:
        counts["pending"] += 1  # the worker finishes it
    except errors.AccordError as failure:
        counts[f"refused_{failure.code}"] = counts.get(f"refused_{failure.code}", 0) + 1


async def settle(accord: Accord) -> int:
    """Run the worker until no operation is open (backoffs skipped); the passes it took."""
    for passes in range(1, 1000):
        await make_everything_due(accord)
        await worker.run_until_idle(accord, FakeMailer())
        async with accord.db.transaction() as conn:
            open_ops = (
                await conn.execute(text("SELECT count(*) FROM operations WHERE state = 'open'"))
            ).scalar()
        if open_ops == 0:
            return passes
    raise AssertionError("the operations never settled")


async def mismatches(accord: Accord) -> list[str]:
    """Users whose e-mail (or name) differs between the database and the IdP."""
    remote = {u.remote_id: u async for u in accord.idp.iter_users(page_size=500)}
    async with accord.db.transaction() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT u.email, u.full_name, l.remote_id FROM users u "
                    "JOIN idp_links l ON l.user_id = u.id WHERE u.status = 'active'"
                )
            )
        ).all()
    return [
        r.email
        for r in rows
        if r.remote_id not in remote
        or (remote[r.remote_id].email, remote[r.remote_id].full_name) != (r.email, r.full_name)
    ]


async def run(
    settings: Settings,
    n: int,
    *,
    error_rate: float = 0.3,
    ghost_rate: float = 0.1,
    seed: int = 13,
    concurrency: int = 8,
) -> dict[str, Any]:
    """Seed ``n`` users, change every address under faults, settle, and compare."""
    async with supabase_accord(settings, seed) as (accord, emulator, base_url):
        ids = await seed_users(accord, emulator, n)
        async with httpx.AsyncClient(base_url=base_url) as control:
            faults = {"error_rate": error_rate, "write_ghost_rate": ghost_rate, "seed": seed}
            (await control.put("/__faults", json=faults)).raise_for_status()
            counts = {"done_at_once": 0, "pending": 0}
            started = time.monotonic()
            for start in range(0, n, concurrency):
                batch = range(start, min(start + concurrency, n))
                await asyncio.gather(*(_change(accord, ids[k], k, counts) for k in batch))
            requests_done = time.monotonic() - started
            passes = await settle(accord)
            seconds = time.monotonic() - started
            stats = (await control.get("/__faults")).json()["stats"]
            (await control.post("/__faults/reset")).raise_for_status()  # a clean look
        async with accord.db.transaction() as conn:
            states = dict(
                (
                    await conn.execute(
                        text(
                            "SELECT state, count(*) FROM operations "
                            "WHERE kind = 'change_email' GROUP BY state"
                        )
                    )
                ).all()
            )
        report = await reconcile(accord, ReconcileOptions())
        await assert_guarantees(accord)  # G1-G11, the IdP's e-mail and name included
        return {
            "users": n,
            "error_rate": error_rate,
            "write_ghost_rate": ghost_rate,
            "requests_seconds": round(requests_done, 2),
            "settled_seconds": round(seconds, 2),
            "worker_rounds": passes,
            "answers": counts,
            "operations": states,
            "emulator_faults": stats,
            "mismatched_users": await mismatches(accord),
            "reconcile_drift_remaining": report.remaining,
        }

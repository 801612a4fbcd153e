"""E-mail changes through an emulated vendor (Supabase) with 30 % 5xx and 10 % ghost writes:
after settle, no user's e-mail differs between the two systems, and `accord reconcile`
agrees. The suite runs N = 60; bench/email_faults.py runs 1,000 (numbers in its docstring)."""

from __future__ import annotations

from accord.config import Settings
from tests.engine.email_faults import run

N = 60


async def test_email_changes_under_5xx_and_ghost_writes_leave_no_mismatch(
    settings: Settings,
) -> None:
    outcome = await run(settings, N)
    assert outcome["mismatched_users"] == []
    assert outcome["reconcile_drift_remaining"] == 0
    assert outcome["operations"] == {"succeeded": N}  # 25 attempts outlast 30 % faults
    assert outcome["answers"]["pending"] > 0  # the faults did strike
    faults = outcome["emulator_faults"]
    assert faults.get("errors", 0) > 0 and faults.get("write_ghosts", 0) > 0

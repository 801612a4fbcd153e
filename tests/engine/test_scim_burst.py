"""A burst of SCIM creates through an emulated vendor IdP (Supabase, 30 % faults, ghost creates),
each sent twice at once as an IdP retrying after a timeout does, then settled: one user per
userName, every guarantee holds, reconcile finds nothing."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from uuid import uuid4

import httpx
from sqlalchemy import text

from accord.bootstrap import Accord
from accord.config import Settings
from accord.domain import errors
from accord.domain.callers import Caller
from accord.services import scim
from accord.services.organizations import NewOrganization, create_organization
from accord.services.reconcile import ReconcileOptions, reconcile
from tests.engine.conftest import PLATFORM
from tests.engine.email_faults import settle, supabase_accord
from tests.guarantees import assert_guarantees

USERS = int(os.environ.get("ACCORD_SCIM_BURST_USERS", "200"))


def _state(k: int) -> scim.ScimUserState:
    email = f"burst{k}@scim.example"
    return scim.ScimUserState(
        user_name=email, email=email, full_name=f"Burst {k}", external_id=f"x{k}"
    )


async def _push(accord: Accord, caller: Caller, k: int, answers: Counter[str]) -> None:
    try:
        await scim.create_scim_user(accord, _state(k), caller=caller)
        answers["created"] += 1
    except (errors.OperationPending, errors.OperationInProgress):
        answers["retry_later"] += 1  # 503 to the IdP: it sends the same create again
    except errors.AccordError as failure:
        answers[failure.code] += 1


async def test_a_burst_of_retried_creates_under_faults_makes_one_user_each(
    settings: Settings,
) -> None:
    async with supabase_accord(settings, seed=7) as (accord, _, base_url):
        org = await create_organization(
            accord, NewOrganization(name="Burst", max_users=USERS), caller=PLATFORM
        )
        caller = Caller.organization(f"token:{uuid4()}", org["id"])
        async with httpx.AsyncClient(base_url=base_url) as control:
            faults = {"error_rate": 0.3, "write_ghost_rate": 0.1, "seed": 7}
            (await control.put("/__faults", json=faults)).raise_for_status()
            answers: Counter[str] = Counter()
            for start in range(0, USERS, 10):  # ten people at a time, each sent twice at once
                batch = range(start, min(start + 10, USERS))
                await asyncio.gather(
                    *(_push(accord, caller, k, answers) for k in batch for _ in "ab")
                )
            (await control.post("/__faults/reset")).raise_for_status()
        await settle(accord)
        for k in range(USERS):  # the IdP's next sync sends every create once more
            await scim.create_scim_user(accord, _state(k), caller=caller)
        listed = await scim.list_scim_users(accord, caller=caller)
        assert sorted(u.record.user_name for u in listed) == sorted(
            f"burst{k}@scim.example" for k in range(USERS)
        )
        async with accord.db.transaction() as conn:
            per_email = (
                await conn.execute(
                    text("SELECT count(*) FROM users WHERE email LIKE 'burst%@scim.example'")
                )
            ).scalar()
        assert per_email == USERS, answers
        await assert_guarantees(accord)
        report = await reconcile(accord, ReconcileOptions())
        assert report.remaining == 0, report
        print(f"SCIM burst: {USERS} users, answers {dict(answers)}")

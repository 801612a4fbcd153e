"""The engine against each emulated vendor under ghost creates, 429 storms and 5xx: clients that
retry with their key end with exactly one user each, and the guarantees hold."""

from __future__ import annotations

import random

from accord.bootstrap import Accord
from accord.domain import errors
from accord.services.provisioning import NewUser, create_user
from accord.services.registration import Registration, register
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees

FAULT_PLAN = [
    ("ghost", "create"),
    ("rate_limited", "create"),
    ("unavailable", "create"),
    ("unavailable", "find_by_email"),
    ("rate_limited", "find_by_email"),
    ("unavailable", "update"),
]


async def retry_until_done(call, attempts: int = 10):
    for _ in range(attempts):
        try:
            return await call()
        except errors.OperationPending:
            continue
    raise AssertionError("the operation did not finish")


async def test_storm_of_faults_still_yields_one_user_per_email(faulty_app: Accord) -> None:
    app, harness = faulty_app, faulty_app.harness  # type: ignore[attr-defined]
    rng = random.Random(7)
    org = await new_org(app, max_users=50)
    for i in range(12):
        for fault, method in rng.sample(FAULT_PLAN, 2):
            for _ in range(3 if fault == "rate_limited" else 1):  # a 429 storm is a burst
                await harness.inject(fault, method)
        request = NewUser(f"user{i}@example.com", f"User {i}", org)
        await retry_until_done(
            lambda r=request, k=f"key-{i}": create_user(app, r, caller=PLATFORM, idempotency_key=k)
        )
    await harness.inject("ghost", "create")
    await retry_until_done(
        lambda: register(
            app, Registration("reg@example.com", "long enough pw", "Reg"), idempotency_key="r"
        )
    )
    assert await scalar(app, "SELECT count(*) FROM users WHERE status = 'pending'") == 12
    assert await scalar(app, "SELECT count(*) FROM organizations WHERE kind = 'personal'") == 1
    assert len([u async for u in app.idp.iter_users()]) == 13
    await assert_guarantees(app)

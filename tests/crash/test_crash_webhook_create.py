"""Crash consistency of registering a webhook endpoint (``services/webhooks.py``, a durable
operation so that a retry with its key answers the first endpoint): SIGKILL at every point the
operation passes, then the worker; afterwards exactly one endpoint exists, and the retry with
the key answers it and the secret it signs with (G6), never a second endpoint."""

from __future__ import annotations

import signal
from uuid import UUID

import pytest

from accord.bootstrap import Accord
from accord.services.crashpoints import OPERATION_POINTS, CrashPoint
from accord.services.webhooks import live_secrets
from tests.crash.test_crash_matrix import (
    CRASH_KEY,
    crash_env,
    retry_in_process,
    run_flow,
    same_answer,
    settle,
    stored_answer,
)
from tests.engine.conftest import scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import SmtpServer

__all__ = ["crash_env"]

# No IdP call: the operation never reaches the point inside one.
POINTS = [p for p in OPERATION_POINTS if p != CrashPoint.IDP_CALL_SENT]
ARGS = {"url": "https://93.184.215.14/hook", "key": CRASH_KEY}


@pytest.mark.parametrize("crash_env", ["local"], indirect=True)  # the IdP has no part in it
@pytest.mark.parametrize("point", POINTS)
async def test_a_webhook_create_killed_at_every_point_makes_one_endpoint(
    crash_env: tuple[Accord, dict[str, str]], smtp: SmtpServer, point: CrashPoint
) -> None:
    accord, env = crash_env

    assert run_flow("create_webhook", ARGS, env, point) == -signal.SIGKILL, f"not killed at {point}"
    await settle(accord, smtp)

    assert await scalar(accord, "SELECT state FROM operations WHERE kind = 'create_webhook'") == (
        "succeeded"
    )
    assert await scalar(accord, "SELECT count(*) FROM webhook_endpoints") == 1
    await assert_guarantees(accord)
    stored = await stored_answer(accord)
    retried = await retry_in_process(accord, "create_webhook", ARGS)
    assert same_answer(retried, stored)
    assert await scalar(accord, "SELECT count(*) FROM webhook_endpoints") == 1
    async with accord.store.transaction() as tx:
        endpoint = await tx.webhooks.get(UUID(retried["result"]["id"]))
    assert endpoint is not None
    assert retried["result"]["secret"] == live_secrets(accord, endpoint)[0]

"""Crash consistency of the e-mail change (services/profile.py): SIGKILL at every named point,
on the success path and while compensating, against the local IdP and the Keycloak emulator;
after the worker settles, the guarantees hold (the IdP's e-mail and name equal the database's
for every user) and a retry with the key answers what the operation stored (G6)."""

from __future__ import annotations

import signal

import pytest

from accord.bootstrap import Accord
from accord.services import worker
from accord.services.crashpoints import COMPENSATION_POINTS, OPERATION_POINTS, CrashPoint
from accord.services.provisioning import NewUser, create_user
from tests.crash.test_crash_matrix import (
    CRASH_KEY,
    crash_env,
    retry_in_process,
    run_flow,
    same_answer,
    stored_answer,
)
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import SmtpServer, make_everything_due

__all__ = ["crash_env"]

OLD, NEW = "crash@example.com", "changed@example.com"


async def prepared(accord: Accord, smtp: SmtpServer) -> dict:
    org = await new_org(accord, max_users=5)
    made = await create_user(accord, NewUser(OLD, "Crash Test", org), caller=PLATFORM)
    await worker.run_until_idle(accord, smtp.mailer())  # its invitation goes out first
    return {
        "user_id": made["user"]["id"],
        "new_email": NEW,
        "full_name": "Changed Name",
        "key": CRASH_KEY,
    }


async def settle(accord: Accord, smtp: SmtpServer) -> None:
    await make_everything_due(accord)
    await worker.run_until_idle(accord, smtp.mailer())
    assert await scalar(accord, "SELECT count(*) FROM operations WHERE state = 'open'") == 0


async def idp_profile(accord: Accord) -> tuple[str, str | None]:
    remote = await accord.idp.get(await scalar(accord, "SELECT remote_id FROM idp_links"))
    return remote.email, remote.full_name


@pytest.mark.parametrize("point", OPERATION_POINTS)
async def test_a_change_killed_at_every_point_is_finished_by_the_worker(
    crash_env: tuple[Accord, dict[str, str]], smtp: SmtpServer, point: CrashPoint
) -> None:
    accord, env = crash_env
    args = await prepared(accord, smtp)

    assert run_flow("change_email", args, env, point) == -signal.SIGKILL, f"not killed at {point}"
    await settle(accord, smtp)

    assert await stored_answer(accord) != {"error": "hook_failed"}
    assert await scalar(accord, "SELECT state FROM operations WHERE kind = 'change_email'") == (
        "succeeded"
    )
    assert await scalar(accord, "SELECT email || '|' || full_name FROM users") == (
        f"{NEW}|Changed Name"
    )
    assert await idp_profile(accord) == (NEW, "Changed Name")
    assert await scalar(accord, "SELECT count(*) FROM users") == 1  # no reservation left
    assert len(smtp.inbox.to(OLD)) == 2  # the invitation, then one notice of the change
    await assert_guarantees(accord)
    stored = await stored_answer(accord)
    assert same_answer(await retry_in_process(accord, "change_email", args), stored)
    assert await idp_profile(accord) == (NEW, "Changed Name")


@pytest.mark.parametrize("point", sorted(COMPENSATION_POINTS))
async def test_a_refused_change_killed_while_compensating_is_undone_in_both(
    crash_env: tuple[Accord, dict[str, str]], smtp: SmtpServer, point: CrashPoint
) -> None:
    accord, env = crash_env
    args = await prepared(accord, smtp) | {"fail_finalize": True}

    assert run_flow("change_email", args, env, point) == -signal.SIGKILL, f"not killed at {point}"
    await settle(accord, smtp)

    assert await stored_answer(accord) == {"error": "hook_failed"}
    assert await scalar(accord, "SELECT email || '|' || full_name FROM users") == (
        f"{OLD}|Crash Test"
    )
    assert await idp_profile(accord) == (OLD, "Crash Test")
    assert await scalar(accord, "SELECT count(*) FROM users") == 1
    assert await scalar(accord, "SELECT count(*) FROM outbox WHERE kind = 'email_changed'") == 0
    await assert_guarantees(accord)
    retried = await retry_in_process(accord, "change_email", args | {"fail_finalize": False})
    assert retried == {"error": "hook_failed"}

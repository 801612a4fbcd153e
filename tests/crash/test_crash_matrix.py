"""Crash consistency: every flow, killed with SIGKILL at every named point, then the worker;
afterwards the guarantees hold, against the local IdP and an emulated vendor (Keycloak over
HTTP). The points are on the success path, inside compensation (an extension hook fails, so
the operation must undo itself), and inside the worker (while it compensates, while it mails).
The client's retry with its key after the crash must answer what the operation stored (G6).

The flow runs in a real subprocess that kills itself at the point (settings.crash_at). Time is
not waited out: the test ends the dead process's lease itself, as the clock would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from accord.adapters.idp.keycloak import KeycloakProvider
from accord.bootstrap import Accord, build
from accord.config import KeycloakSettings, Settings
from accord.emulators import keycloak as keycloak_emulator
from accord.services import worker
from accord.services.crashpoints import COMPENSATION_POINTS, OPERATION_POINTS, CrashPoint
from accord.services.provisioning import NewUser, create_user
from accord.testing.servers import serve_in_thread
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import SmtpServer, make_everything_due

FLOWS = ["admin_create", "org_admin_create", "register", "deprovision"]
REPO = Path(__file__).resolve().parents[2]
CRASH_KEY = "crash-key"


@pytest.fixture(params=["local", "keycloak"])
async def crash_env(request, settings: Settings) -> AsyncIterator[tuple[Accord, dict[str, str]]]:
    """accord for the checks, and the environment that points a subprocess at the same IdP."""
    env = {
        "ACCORD_DATABASE_URL": settings.database_url.get_secret_value(),
        "ACCORD_DATA_DIR": str(settings.data_dir),
        "ACCORD_SECRET_KEY": settings.secret_key.get_secret_value(),
    }
    if request.param == "local":
        accord = build(settings)
        try:
            yield accord, env
        finally:
            await accord.aclose()
        return
    with serve_in_thread(keycloak_emulator.create_app()) as url:
        kc = KeycloakSettings(
            server_url=url,
            realm=keycloak_emulator.DEFAULT_REALM,
            client_id=keycloak_emulator.DEFAULT_CLIENT_ID,
            client_secret=keycloak_emulator.DEFAULT_CLIENT_SECRET,
        )
        env |= {
            "ACCORD_IDP": "keycloak",
            "ACCORD_KEYCLOAK__SERVER_URL": url,
            "ACCORD_KEYCLOAK__REALM": kc.realm,
            "ACCORD_KEYCLOAK__CLIENT_ID": kc.client_id,
            "ACCORD_KEYCLOAK__CLIENT_SECRET": kc.client_secret.get_secret_value(),
        }
        accord = build(settings, idp=KeycloakProvider.from_settings(kc))
        try:
            yield accord, env
        finally:
            await accord.aclose()


def run_module(module: list[str], env: dict[str, str], crash_at: str | None) -> int:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    if crash_at:
        base["ACCORD_CRASH_AT"] = crash_at
    proc = subprocess.run(
        [sys.executable, "-m", *module],
        env={**base, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode


def run_flow(flow: str, args: dict, env: dict[str, str], crash_at: str | None) -> int:
    return run_module(["tests.crash.run_flow", flow, json.dumps(args)], env, crash_at)


async def retry_in_process(accord: Accord, flow: str, args: dict) -> dict:
    """What the subprocess would do again, with its key: the same code path, minus a start-up."""
    from tests.crash import run_flow as runner

    return await runner.answer(accord, flow, args)


async def stored_answer(accord: Accord) -> dict:
    """The answer the operation stored: its result, or its error's code."""
    async with accord.db.transaction() as conn:
        query = text("SELECT state, result, error FROM operations WHERE idempotency_key = :k")
        row = (await conn.execute(query, {"k": CRASH_KEY})).one()
    return {"result": row.result} if row.state == "succeeded" else {"error": row.error["code"]}


def same_answer(retry: dict, stored: dict) -> bool:
    """The retry answers what was stored (a create's result adds back its sealed secrets)."""
    if "error" in stored:
        return retry == stored
    result = retry.get("result") or {}
    return {k: result.get(k) for k in stored["result"]} == stored["result"]


@pytest.mark.parametrize("point", OPERATION_POINTS)
@pytest.mark.parametrize("flow", FLOWS)
async def test_kill_at_every_point_then_the_worker_settles_it(
    crash_env: tuple[Accord, dict[str, str]], smtp: SmtpServer, flow: str, point: CrashPoint
) -> None:
    accord, env = crash_env
    org = await new_org(accord, max_users=5)
    args = {"email": "crash@example.com", "org": str(org), "key": CRASH_KEY}
    if flow == "deprovision":
        made = await create_user(accord, NewUser("crash@example.com", "C", org), caller=PLATFORM)
        await worker.run_until_idle(accord, smtp.mailer())  # its invitation goes out first
        args["user_id"] = made["user"]["id"]

    assert run_flow(flow, args, env, point) == -signal.SIGKILL, f"not killed at {point}"

    await make_everything_due(accord)
    await worker.run_until_idle(accord, smtp.mailer())

    assert await scalar(accord, "SELECT count(*) FROM operations WHERE state = 'open'") == 0
    states = await scalar(accord, "SELECT array_agg(DISTINCT state) FROM operations")
    assert states == ["succeeded"]
    await assert_guarantees(accord)
    expected_status = {"deprovision": "disabled", "register": "active"}.get(flow, "pending")
    assert await scalar(accord, "SELECT status FROM users") == expected_status
    # G8: exactly one invitation per committed invited user, none for anyone else.
    mails = smtp.inbox.to("crash@example.com")
    assert len(mails) == (0 if flow == "register" else 1)
    # The client's retry with its key gets the stored answer (G6), and changes nothing.
    assert same_answer(await retry_in_process(accord, flow, args), await stored_answer(accord))
    assert await scalar(accord, "SELECT count(*) FROM users") == 1
    assert await scalar(accord, "SELECT count(*) FROM organizations") == (
        2 if flow == "register" else 1
    )


async def assert_undone(accord: Accord) -> None:
    """A compensated operation: failed with its error, and no trace (G7) in either system."""
    assert await scalar(accord, "SELECT count(*) FROM operations WHERE state = 'open'") == 0
    assert await stored_answer(accord) == {"error": "hook_failed"}
    assert await scalar(accord, "SELECT count(*) FROM users") == 0
    assert await scalar(accord, "SELECT count(*) FROM memberships") == 0
    assert await scalar(accord, "SELECT count(*) FROM outbox") == 0
    assert [u async for u in accord.idp.iter_users()] == []
    await assert_guarantees(accord)


@pytest.mark.parametrize("point", sorted(COMPENSATION_POINTS))
@pytest.mark.parametrize("flow", ["admin_create", "register"])
async def test_kill_while_compensating_then_the_worker_undoes_it(
    crash_env: tuple[Accord, dict[str, str]], smtp: SmtpServer, flow: str, point: CrashPoint
) -> None:
    accord, env = crash_env
    org = await new_org(accord, max_users=5)
    args = {"email": "crash@example.com", "org": str(org), "key": CRASH_KEY, "fail_hook": True}

    assert run_flow(flow, args, env, point) == -signal.SIGKILL, f"not killed at {point}"

    await make_everything_due(accord)
    await worker.run_until_idle(accord, smtp.mailer())
    await assert_undone(accord)
    assert smtp.inbox.messages == []
    # The retry with the key (now without the failing hook) answers the stored failure.
    assert await retry_in_process(accord, flow, args) == {"error": "hook_failed"}
    assert await scalar(accord, "SELECT count(*) FROM users") == 0


def smtp_env(smtp: SmtpServer) -> dict[str, str]:
    return {"ACCORD_SMTP__HOST": "127.0.0.1", "ACCORD_SMTP__PORT": str(smtp.port)}


async def test_the_worker_killed_while_compensating_leaves_it_to_the_next(
    crash_env: tuple[Accord, dict[str, str]], smtp: SmtpServer
) -> None:
    accord, env = crash_env
    org = await new_org(accord, max_users=5)
    args = {"email": "crash@example.com", "org": str(org), "key": CRASH_KEY, "fail_hook": True}
    # The client dies having started to undo: the operation is left compensating.
    assert run_flow("admin_create", args, env, CrashPoint.UNDO_SENT) == -signal.SIGKILL
    await make_everything_due(accord)
    # A worker process picks it up and dies in the middle of the undo as well.
    worker_env = env | smtp_env(smtp)
    crashed = run_module(["accord", "worker", "--once"], worker_env, CrashPoint.UNDO_ANSWERED)
    assert crashed == -signal.SIGKILL
    await make_everything_due(accord)
    await worker.run_until_idle(accord, smtp.mailer())
    await assert_undone(accord)


async def test_the_worker_killed_after_mailing_sends_again_and_marks_it_sent(
    crash_env: tuple[Accord, dict[str, str]], smtp: SmtpServer
) -> None:
    accord, env = crash_env
    org = await new_org(accord, max_users=5)
    await create_user(accord, NewUser("crash@example.com", "C", org), caller=PLATFORM)
    crashed = run_module(["accord", "worker", "--once"], env | smtp_env(smtp), CrashPoint.MAIL_SENT)
    assert crashed == -signal.SIGKILL
    assert len(smtp.inbox.to("crash@example.com")) == 1  # sent, but not recorded as sent
    await make_everything_due(accord)
    await worker.run_until_idle(accord, smtp.mailer())
    # At least once (G8): the message went out again, and the outbox now knows it was sent.
    assert len(smtp.inbox.to("crash@example.com")) == 2
    assert await scalar(accord, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    await assert_guarantees(accord)

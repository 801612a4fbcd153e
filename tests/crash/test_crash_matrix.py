"""Crash consistency: every flow, killed with SIGKILL at every named point, then the worker;
afterwards G1 to G8 hold, against the local IdP and an emulated vendor (Keycloak over HTTP).

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

from accord.adapters.idp.keycloak import KeycloakProvider
from accord.bootstrap import Accord, build
from accord.config import KeycloakSettings, Settings
from accord.emulators import keycloak as keycloak_emulator
from accord.services import worker
from accord.services.crashpoints import CrashPoint
from accord.services.provisioning import NewUser, create_user
from accord.testing.servers import serve_in_thread
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import SmtpServer, make_everything_due

FLOWS = ["admin_create", "org_admin_create", "register", "deprovision"]
REPO = Path(__file__).resolve().parents[2]


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


def run_flow(flow: str, args: dict, env: dict[str, str], crash_at: str | None) -> int:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    if crash_at:
        base["ACCORD_CRASH_AT"] = crash_at
    proc = subprocess.run(
        [sys.executable, "-m", "tests.crash.run_flow", flow, json.dumps(args)],
        env={**base, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode


async def retry_in_process(accord: Accord, flow: str, args: dict) -> None:
    """What the subprocess would do again, with its key: the same code path, minus a start-up."""
    from tests.crash import run_flow as runner

    await runner.run(accord, flow, args)


@pytest.mark.parametrize("point", list(CrashPoint))
@pytest.mark.parametrize("flow", FLOWS)
async def test_kill_at_every_point_then_the_worker_settles_it(
    crash_env: tuple[Accord, dict[str, str]], smtp: SmtpServer, flow: str, point: CrashPoint
) -> None:
    accord, env = crash_env
    org = await new_org(accord, max_users=5)
    args = {"email": "crash@example.com", "org": str(org), "key": "crash-key"}
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
    # The client's retry with its key gets the finished result, and changes nothing.
    await retry_in_process(accord, flow, args)
    assert await scalar(accord, "SELECT count(*) FROM users") == 1
    assert await scalar(accord, "SELECT count(*) FROM organizations") == (
        2 if flow == "register" else 1
    )

"""``accord worker`` stopped by SIGTERM while an operation is in the middle of its IdP call: the
process finishes the pass in hand and exits 0 by itself, and the operation is left resumable
(its lease released), never half done; another worker then finishes it."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from accord.adapters.idp.keycloak import KeycloakProvider
from accord.bootstrap import build
from accord.config import KeycloakSettings, Settings
from accord.domain import errors
from accord.emulators import keycloak as keycloak_emulator
from accord.emulators.faults import FaultConfig
from accord.services import worker
from accord.services.provisioning import NewUser, create_user
from accord.testing import FakeMailer
from accord.testing.servers import serve_in_thread
from tests.api.test_serve import start
from tests.contracts.harness_keycloak import script_fault
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import make_everything_due
from tests.patience import PATIENCE

REPO = Path(__file__).resolve().parents[2]
HANG = 3.0  # the emulator holds the worker's create this long, then answers 504


async def test_sigterm_mid_operation_exits_zero_and_leaves_it_resumable(
    settings: Settings,
) -> None:
    app = keycloak_emulator.create_app(faults=FaultConfig(hang_seconds=HANG))
    with serve_in_thread(app) as url:
        kc = KeycloakSettings(
            server_url=url,
            realm=keycloak_emulator.DEFAULT_REALM,
            client_id=keycloak_emulator.DEFAULT_CLIENT_ID,
            client_secret=keycloak_emulator.DEFAULT_CLIENT_SECRET,
        )
        accord = build(settings, idp=KeycloakProvider.from_settings(kc))
        try:
            org = await new_org(accord)
            await script_fault(url, "create_user", "unavailable")
            with pytest.raises(errors.OperationPending):  # open, waiting for a worker
                await create_user(accord, NewUser("ada@example.com", "Ada", org), caller=PLATFORM)
            await make_everything_due(accord)
            await script_fault(url, "create_user", "timeout")  # the worker's call will hang

            env = {
                "ACCORD_DATABASE_URL": settings.database_url.get_secret_value(),
                "ACCORD_DATA_DIR": str(settings.data_dir),
                "ACCORD_SECRET_KEY": settings.secret_key.get_secret_value(),
                "ACCORD_WORKER_POLL_SECONDS": "0.2",
                "ACCORD_IDP": "keycloak",
                "ACCORD_KEYCLOAK__SERVER_URL": url,
                "ACCORD_KEYCLOAK__REALM": kc.realm,
                "ACCORD_KEYCLOAK__CLIENT_ID": kc.client_id,
                "ACCORD_KEYCLOAK__CLIENT_SECRET": kc.client_secret.get_secret_value(),
            }
            process = start(env, "worker")
            try:
                faults = app.state.faults
                deadline = asyncio.get_running_loop().time() + PATIENCE
                while faults.scripted.get("create_user"):  # the worker's create has not come
                    assert process.poll() is None, process.communicate()
                    assert asyncio.get_running_loop().time() < deadline, "no create came"
                    await asyncio.sleep(0.05)  # polling an observable condition, bounded
                process.send_signal(signal.SIGTERM)  # while the create hangs in the emulator
                _, stderr = await asyncio.to_thread(process.communicate, timeout=PATIENCE)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.communicate()
            assert process.returncode == 0, stderr  # it stopped by itself, not killed
            assert "the pass in hand was finished" in stderr

            # Resumable: still open, lease released, no half-made row (a provisioning row only).
            assert await scalar(accord, "SELECT state FROM operations") == "open"
            assert await scalar(accord, "SELECT lease_until FROM operations") is None
            assert await scalar(accord, "SELECT status FROM users") == "provisioning"

            await make_everything_due(accord)
            done = await worker.run_until_idle(accord, FakeMailer())  # another worker
            assert done.succeeded == 1
            assert await scalar(accord, "SELECT state FROM operations") == "succeeded"
            await assert_guarantees(accord)
        finally:
            await accord.aclose()

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
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import insert, text

from accord.adapters.db.tables import local_identities
from accord.adapters.idp.keycloak import KeycloakProvider
from accord.adapters.idp.local import LocalProvider
from accord.bootstrap import Accord, build
from accord.config import KeycloakSettings, Settings
from accord.domain.model import Role
from accord.emulators import keycloak as keycloak_emulator
from accord.services import worker
from accord.services.crashpoints import COMPENSATION_POINTS, OPERATION_POINTS, CrashPoint
from accord.services.deprovisioning import deprovision_user
from accord.services.provisioning import NewUser, create_user
from accord.services.registration import Registration, register
from accord.services.suspension import suspend_user
from accord.testing.servers import serve_in_thread
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import SmtpServer, make_everything_due

FLOWS = ["admin_create", "org_admin_create", "register", "deprovision"]
REPO = Path(__file__).resolve().parents[2]
CRASH_KEY = "crash-key"


@dataclass
class CrashEnv:
    """accord for the checks, the environment that points a subprocess at the same IdP, and a
    way to plant an identity another system made (no accord stamp) with a password."""

    accord: Accord
    env: dict[str, str]
    _plant: Callable[[str, str], Awaitable[None]]
    _secret: Callable[[str], Awaitable[str | None]]

    async def plant_foreign(self, email: str, password: str) -> None:
        await self._plant(email, password)

    async def secret(self, email: str) -> str | None:
        """What the IdP stores for ``email``'s password (a hash): it changes if reset."""
        return await self._secret(email)


@asynccontextmanager
async def open_env(kind: str, settings: Settings) -> AsyncIterator[CrashEnv]:
    env = {
        "ACCORD_DATABASE_URL": settings.database_url.get_secret_value(),
        "ACCORD_DATA_DIR": str(settings.data_dir),
        "ACCORD_SECRET_KEY": settings.secret_key.get_secret_value(),
    }
    if kind == "local":
        accord = build(settings)
        local = accord.idp
        assert isinstance(local, LocalProvider)

        async def plant_local(email: str, password: str) -> None:
            remote_id = str(uuid.uuid4())
            async with accord.db.transaction() as conn:
                values = {"id": remote_id, "email": email, "full_name": "Legacy User"}
                await conn.execute(insert(local_identities).values(**values))
            await local.set_password(remote_id, password)

        async def secret_local(email: str) -> str | None:
            return await scalar(
                accord,
                "SELECT c.secret_hash FROM local_credentials c JOIN local_identities i "
                "ON i.id = c.identity_id WHERE i.email = :e",
                e=email,
            )

        try:
            yield CrashEnv(accord, env, plant_local, secret_local)
        finally:
            await accord.aclose()
        return
    emulator = keycloak_emulator.create_app()
    realm = emulator.state.keycloak
    with serve_in_thread(emulator) as url:
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

        async def plant_keycloak(email: str, password: str) -> None:
            realm.create(  # no accord_user_id attribute: a user some other system made
                {
                    "username": email,
                    "email": email,
                    "firstName": "Legacy",
                    "lastName": "User",
                    "enabled": True,
                    "credentials": [{"type": "password", "value": password}],
                }
            )

        async def secret_keycloak(email: str) -> str | None:
            ids = [u["id"] for u in realm.users.values() if u.get("email") == email]
            return realm.password_digests.get(ids[0]) if ids else None

        accord = build(settings, idp=KeycloakProvider.from_settings(kc))
        try:
            yield CrashEnv(accord, env, plant_keycloak, secret_keycloak)
        finally:
            await accord.aclose()


@pytest.fixture(params=["local", "keycloak"])
async def crash_env(request, settings: Settings) -> AsyncIterator[tuple[Accord, dict[str, str]]]:
    """accord for the checks, and the environment that points a subprocess at the same IdP."""
    async with open_env(request.param, settings) as opened:
        yield opened.accord, opened.env


@pytest.fixture(params=["local", "keycloak"])
async def planting_env(request, settings: Settings) -> AsyncIterator[CrashEnv]:
    """``crash_env``, with a way to plant a foreign identity in the IdP."""
    async with open_env(request.param, settings) as opened:
        yield opened


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


# -- identities accord did not create, and addresses used again (issue 11) ------------------------

FOREIGN_EMAIL = "legacy@example.com"
FOREIGN_PASSWORD = "the legacy system's own passphrase"
# Adopting creates nothing in the IdP (no idp_call_sent): the points it passes that matter.
ADOPT_POINTS = (
    CrashPoint.AFTER_CLAIM,
    CrashPoint.IDP_ANSWERED,
    CrashPoint.AFTER_RECOVERY_POINT,
    CrashPoint.BEFORE_FINALIZE_COMMIT,
)
# A refusal fails at the IdP phase, then compensates (deleting nothing: nothing was created).
REFUSE_POINTS = (
    CrashPoint.AFTER_CLAIM,
    CrashPoint.UNDO_ANSWERED,
    CrashPoint.BEFORE_COMPENSATION_COMMIT,
)


async def settle(accord: Accord, smtp: SmtpServer) -> None:
    """What the clock and the worker do after the crash: the dead lease ends, the worker runs."""
    await make_everything_due(accord)
    await worker.run_until_idle(accord, smtp.mailer())
    assert await scalar(accord, "SELECT count(*) FROM operations WHERE state = 'open'") == 0


@pytest.mark.parametrize("point", ADOPT_POINTS)
async def test_adopt_foreign_killed_then_linked_untouched(
    planting_env: CrashEnv, smtp: SmtpServer, point: CrashPoint
) -> None:
    accord, env = planting_env.accord, planting_env.env
    org = await new_org(accord, max_users=5)
    await planting_env.plant_foreign(FOREIGN_EMAIL, FOREIGN_PASSWORD)
    before = await accord.idp.find_by_email(FOREIGN_EMAIL)
    secret = await planting_env.secret(FOREIGN_EMAIL)
    assert before is not None and before.accord_user_id is None and secret
    args = {"email": FOREIGN_EMAIL, "org": str(org), "key": CRASH_KEY, "adopt_existing": True}

    assert run_flow("admin_create", args, env, point) == -signal.SIGKILL, f"not killed at {point}"
    await settle(accord, smtp)

    assert await scalar(accord, "SELECT state FROM operations") == "succeeded"
    assert await scalar(accord, "SELECT created_by_accord FROM idp_links") is False
    assert await scalar(accord, "SELECT remote_id FROM idp_links") == before.remote_id
    assert await scalar(accord, "SELECT status FROM users") == "active"  # its own password
    # The foreign identity is as it was: name, stamp, password.
    assert await accord.idp.find_by_email(FOREIGN_EMAIL) == before
    assert await planting_env.secret(FOREIGN_EMAIL) == secret
    if isinstance(accord.idp, LocalProvider):
        assert await accord.idp.verify_password(FOREIGN_EMAIL, FOREIGN_PASSWORD) is not None
    assert smtp.inbox.to(FOREIGN_EMAIL) == []  # no invitation to an account already in use
    await assert_guarantees(accord)
    stored = await stored_answer(accord)
    assert stored["result"]["reused_identity"] is True
    assert same_answer(await retry_in_process(accord, "admin_create", args), stored)
    assert await scalar(accord, "SELECT count(*) FROM users") == 1
    assert await accord.idp.find_by_email(FOREIGN_EMAIL) == before


@pytest.mark.parametrize("point", REFUSE_POINTS)
async def test_foreign_refused_killed_then_failed_and_untouched(
    planting_env: CrashEnv, smtp: SmtpServer, point: CrashPoint
) -> None:
    accord, env = planting_env.accord, planting_env.env
    org = await new_org(accord, max_users=5)
    await planting_env.plant_foreign(FOREIGN_EMAIL, FOREIGN_PASSWORD)
    before = await accord.idp.find_by_email(FOREIGN_EMAIL)
    secret = await planting_env.secret(FOREIGN_EMAIL)
    args = {"email": FOREIGN_EMAIL, "org": str(org), "key": CRASH_KEY}

    assert run_flow("org_admin_create", args, env, point) == -signal.SIGKILL, point
    await settle(accord, smtp)

    assert await stored_answer(accord) == {"error": "identity_exists"}
    assert await scalar(accord, "SELECT count(*) FROM users") == 0
    assert await scalar(accord, "SELECT count(*) FROM memberships") == 0
    assert await scalar(accord, "SELECT count(*) FROM idp_links") == 0
    assert await scalar(accord, "SELECT count(*) FROM outbox") == 0
    assert await accord.idp.find_by_email(FOREIGN_EMAIL) == before  # still there, untouched
    assert await planting_env.secret(FOREIGN_EMAIL) == secret
    assert [u.remote_id async for u in accord.idp.iter_users()] == [before.remote_id]
    await assert_guarantees(accord)
    assert await retry_in_process(accord, "org_admin_create", args) == {"error": "identity_exists"}
    assert await scalar(accord, "SELECT count(*) FROM users") == 0


@pytest.mark.parametrize("point", OPERATION_POINTS)
async def test_reregister_killed_then_a_new_person(
    crash_env: tuple[Accord, dict[str, str]], smtp: SmtpServer, point: CrashPoint
) -> None:
    accord, env = crash_env
    email = "crash@example.com"
    first = await register(accord, Registration(email, "the first owner's passphrase", "First"))
    former, former_org = first["user"]["id"], first["organization"]["id"]
    await deprovision_user(accord, former, caller=PLATFORM)
    args = {"email": email, "key": CRASH_KEY}

    assert run_flow("register", args, env, point) == -signal.SIGKILL, f"not killed at {point}"
    await settle(accord, smtp)

    stored = await stored_answer(accord)
    new_id = stored["result"]["user"]["id"]
    assert new_id != former
    assert stored["result"]["organization"]["id"] != former_org
    assert await scalar(accord, "SELECT status FROM users WHERE id = :u", u=new_id) == "active"
    owned = await scalar(
        accord, "SELECT array_agg(id::text) FROM organizations WHERE owner_user_id = :u", u=new_id
    )
    assert owned == [stored["result"]["organization"]["id"]]  # its own, new organization
    retired = await scalar(
        accord,
        "SELECT json_build_object('email', email, 'former', former_email, 'status', status) "
        "FROM users WHERE id = :u",
        u=former,
    )
    assert retired == {"email": None, "former": email, "status": "disabled"}
    in_former_org = await scalar(
        accord, "SELECT count(*) FROM memberships WHERE organization_id = :o", o=former_org
    )
    assert in_former_org == 0  # the former organization is not handed over
    await assert_guarantees(accord)
    assert same_answer(await retry_in_process(accord, "register", args), stored)
    assert await scalar(accord, "SELECT count(*) FROM users") == 2
    assert await scalar(accord, "SELECT count(*) FROM organizations") == 2


# -- offboarding an organization (issue 13) -------------------------------------------------------


@pytest.mark.parametrize("point", OPERATION_POINTS)
async def test_offboarding_killed_then_finished_once(
    crash_env: tuple[Accord, dict[str, str]], smtp: SmtpServer, point: CrashPoint
) -> None:
    accord, env = crash_env
    acme, globex = await new_org(accord, "Acme"), await new_org(accord, "Globex")
    await create_user(accord, NewUser("leaving@example.com", "L", acme), caller=PLATFORM)
    staying = await create_user(accord, NewUser("staying@example.com", "S", acme), caller=PLATFORM)
    async with accord.store.transaction() as tx:  # a member of Globex too: stays
        await tx.memberships.put(
            user_id=UUID(staying["user"]["id"]),
            organization_id=globex,
            role=Role.ORG_USER,
            permissions=[],
        )
    await worker.run_until_idle(accord, smtp.mailer())
    args = {"org": str(acme), "key": CRASH_KEY}

    assert run_flow("delete_organization", args, env, point) == -signal.SIGKILL, point
    await settle(accord, smtp)

    stored = await stored_answer(accord)
    assert stored["result"]["users_deprovisioned"] == 1
    assert stored["result"]["members_removed"] == 2
    assert await accord.idp.find_by_email("leaving@example.com") is None
    assert await accord.idp.find_by_email("staying@example.com") is not None
    assert await scalar(accord, "SELECT count(*) FROM organizations") == 1
    statuses = await scalar(accord, "SELECT array_agg(status ORDER BY status) FROM users")
    assert statuses == ["disabled", "pending"]
    await assert_guarantees(accord)
    assert same_answer(await retry_in_process(accord, "delete_organization", args), stored)
    deleted = "SELECT count(*) FROM audit_events WHERE action = 'organization.deleted'"
    assert await scalar(accord, deleted) == 1


# -- accepting an invitation (issue 13) ----------------------------------------------------------


async def invited_token(accord: Accord, smtp: SmtpServer, org: uuid.UUID, email: str) -> str:
    """Invite ``email`` into ``org``; the token of the link the worker mailed."""
    from accord.services.invitations import Invite, invite

    await invite(accord, Invite(org, email), caller=PLATFORM)
    await worker.run_until_idle(accord, smtp.mailer())
    [mail] = smtp.inbox.to(email)
    [token] = re.findall(r"#token=([A-Za-z0-9_\-]+)", mail.get_content())
    return token


@pytest.mark.parametrize("point", OPERATION_POINTS)
async def test_accept_killed_at_every_point_then_the_worker_settles_it(
    crash_env: tuple[Accord, dict[str, str]], smtp: SmtpServer, point: CrashPoint
) -> None:
    accord, env = crash_env
    org = await new_org(accord, max_users=1)  # the invitation holds the only seat
    token = await invited_token(accord, smtp, org, "crash@example.com")
    args = {"token": token}

    assert run_flow("accept_invitation", args, env, point) == -signal.SIGKILL, point

    await make_everything_due(accord)
    await worker.run_until_idle(accord, smtp.mailer())
    assert await scalar(accord, "SELECT count(*) FROM operations WHERE state = 'open'") == 0
    assert await scalar(accord, "SELECT array_agg(DISTINCT state) FROM operations") == ["succeeded"]
    await assert_guarantees(accord)
    assert await scalar(accord, "SELECT status FROM users") == "active"
    assert await scalar(accord, "SELECT status FROM invitations") == "accepted"
    assert await scalar(accord, "SELECT count(*) FROM memberships") == 1
    # The person's retry answers the accepted invitation, and changes nothing.
    retry = await retry_in_process(accord, "accept_invitation", args)
    user_id = await scalar(accord, "SELECT id::text FROM users")
    assert retry["result"]["user"]["id"] == user_id and retry["result"]["new_user"] is True
    assert await scalar(accord, "SELECT count(*) FROM users") == 1
    assert len(smtp.inbox.to("crash@example.com")) == 1  # the invitation only


@pytest.mark.parametrize("point", sorted(COMPENSATION_POINTS))
async def test_accept_killed_while_compensating_leaves_the_invitation_usable(
    crash_env: tuple[Accord, dict[str, str]], smtp: SmtpServer, point: CrashPoint
) -> None:
    accord, env = crash_env
    org = await new_org(accord, max_users=1)
    token = await invited_token(accord, smtp, org, "crash@example.com")
    args = {"token": token, "fail_hook": True}

    assert run_flow("accept_invitation", args, env, point) == -signal.SIGKILL, point

    await make_everything_due(accord)
    await worker.run_until_idle(accord, smtp.mailer())
    assert await scalar(accord, "SELECT count(*) FROM operations WHERE state = 'open'") == 0
    assert await scalar(accord, "SELECT error->>'code' FROM operations") == "hook_failed"
    assert await scalar(accord, "SELECT count(*) FROM users") == 0
    assert await scalar(accord, "SELECT count(*) FROM memberships") == 0
    assert [u async for u in accord.idp.iter_users()] == []
    # G7: the invitation is as it was: pending, holding its seat, no acceptance under way.
    assert await scalar(accord, "SELECT status FROM invitations") == "pending"
    assert await scalar(accord, "SELECT accept_operation_id FROM invitations") is None
    await assert_guarantees(accord)
    # Its link answers the stored failure (the same answer for the same link).
    assert await retry_in_process(accord, "accept_invitation", args) == {"error": "hook_failed"}


# -- suspension and reactivation (issue 13) -------------------------------------------------------


@pytest.mark.parametrize("point", OPERATION_POINTS)
@pytest.mark.parametrize("flow", ["suspend", "reactivate"])
async def test_suspension_killed_at_every_point_then_both_systems_agree(
    crash_env: tuple[Accord, dict[str, str]], smtp: SmtpServer, flow: str, point: CrashPoint
) -> None:
    accord, env = crash_env
    org = await new_org(accord, max_users=5)
    made = await create_user(accord, NewUser("crash@example.com", "C", org), caller=PLATFORM)
    await worker.run_until_idle(accord, smtp.mailer())  # its invitation goes out first
    user_id = made["user"]["id"]
    if flow == "reactivate":
        await suspend_user(accord, user_id, caller=PLATFORM)
    args = {"user_id": user_id, "key": CRASH_KEY}

    assert run_flow(flow, args, env, point) == -signal.SIGKILL, f"not killed at {point}"
    await settle(accord, smtp)

    states = await scalar(accord, "SELECT array_agg(DISTINCT state) FROM operations")
    assert states == ["succeeded"]
    await assert_guarantees(accord)  # G2 included: the IdP's enabled state is the database's
    expected = "suspended" if flow == "suspend" else "pending"
    assert await scalar(accord, "SELECT status FROM users") == expected
    remote_id = await scalar(accord, "SELECT remote_id FROM idp_links")
    assert (await accord.idp.get(remote_id)).enabled is (flow == "reactivate")
    # A reactivated user who never set a password is invited again, once.
    assert len(smtp.inbox.to("crash@example.com")) == (1 if flow == "suspend" else 2)
    assert same_answer(await retry_in_process(accord, flow, args), await stored_answer(accord))
    assert await scalar(accord, "SELECT status FROM users") == expected

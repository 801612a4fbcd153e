"""The worker finishes interrupted user creations set-wise (issue 12, P4) with the outcome the
per-row path gives each: the same rows, answers and guarantees; what is not plain (a temporary
password, a failing hook) still goes, and ends, the per-row way."""

from __future__ import annotations

import contextlib
from typing import Any
from uuid import UUID

import pytest

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.model import CredentialMode
from accord.services import bulk_resume, crashpoints, worker
from accord.services.crashpoints import CrashPoint
from accord.services.provisioning import NewUser, create_user
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import SmtpServer, make_everything_due


class Killed(BaseException):
    """Stands in for the SIGKILL at a crash point (nothing in accord catches it)."""


async def interrupted(
    accord: Accord,
    monkeypatch: pytest.MonkeyPatch,
    org: UUID,
    points: dict[str, CrashPoint],
    **changes: Any,
) -> None:
    """Create a user for each e-mail, interrupted at its point (the lease still running);
    afterwards (the worker) no point interrupts anything."""
    current: dict[str, str | None] = {"email": None}

    def reach(settings: Any, point: CrashPoint) -> None:
        email = current["email"]
        if email is not None and points.get(email) == point:
            raise Killed(point)

    monkeypatch.setattr(crashpoints, "reach", reach)
    for email in points:
        current["email"] = email
        request = NewUser(email, "Ada Lovelace", org, **changes)
        with contextlib.suppress(Killed):
            await create_user(accord, request, caller=PLATFORM, idempotency_key=email)
    current["email"] = None


def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many each set-wise batch finished."""
    done: list[int] = []
    original = bulk_resume.resume_batch

    async def resume_batch(accord: Any, leased: Any) -> Any:
        finished, left = await original(accord, leased)
        done.append(finished)
        return finished, left

    monkeypatch.setattr(bulk_resume, "resume_batch", resume_batch)
    return done


async def test_interrupted_creations_are_finished_set_wise_as_the_per_row_path_would(
    accord: Accord, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await new_org(accord, max_users=50)
    points = {
        f"u{n}@example.com": (CrashPoint.AFTER_CLAIM, CrashPoint.IDP_ANSWERED)[n % 2]
        for n in range(20)
    }
    points["ready@example.com"] = CrashPoint.AFTER_RECOVERY_POINT  # leased at idp_ensured
    await interrupted(accord, monkeypatch, org, points)
    temporary = {"temp@example.com": CrashPoint.AFTER_CLAIM}  # not plain: a sealed secret
    await interrupted(accord, monkeypatch, org, temporary, credential=CredentialMode.TEMP_PASSWORD)
    done = counted(monkeypatch)
    await make_everything_due(accord)
    result = await worker.run_until_idle(accord, smtp.mailer())
    assert (result.succeeded, result.failed, result.postponed) == (22, 0, 0)
    assert sum(done) == 21  # all but the temporary password's
    states = await scalar(accord, "SELECT array_agg(DISTINCT state) FROM operations")
    assert states == ["succeeded"]
    assert await scalar(accord, "SELECT count(*) FROM memberships") == 22
    assert len(smtp.inbox.messages) == 21  # invitations; the temporary password is not mailed
    # A replay by key answers what a per-row create stores.
    again = await create_user(
        accord,
        NewUser("u0@example.com", "Ada Lovelace", org),
        caller=PLATFORM,
        idempotency_key="u0@example.com",
    )
    assert again["user"]["status"] == "pending" and again["reused_identity"] is False
    assert again["temporary_password"] is None and again["credential"] == "invite"
    events = await scalar(accord, "SELECT count(*) FROM audit_events WHERE action = 'user.created'")
    assert events == 22
    await assert_guarantees(accord)


async def test_a_failing_hook_sends_the_batch_the_per_row_way_and_fails_only_its_own(
    accord: Accord, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await new_org(accord, max_users=50)
    points = {f"u{n}@example.com": CrashPoint.AFTER_CLAIM for n in range(6)}
    await interrupted(accord, monkeypatch, org, points)

    async def refuses_u3(conn: Any, user: Any) -> None:
        if user.email == "u3@example.com":
            raise RuntimeError("the HR system said no")

    accord.hooks.register(refuses_u3)
    done = counted(monkeypatch)
    await make_everything_due(accord)
    result = await worker.run_until_idle(accord, smtp.mailer())
    assert (result.succeeded, result.failed) == (5, 1)
    assert sum(done) == 0  # the set-wise finalize rolled back whole
    failed = await scalar(accord, "SELECT request->>'email' FROM operations WHERE state = 'failed'")
    assert failed == "u3@example.com"
    assert await scalar(accord, "SELECT count(*) FROM users") == 5
    with pytest.raises(errors.HookFailed):
        await create_user(
            accord,
            NewUser("u3@example.com", "Ada Lovelace", org),
            caller=PLATFORM,
            idempotency_key="u3@example.com",
        )
    await assert_guarantees(accord)

"""The worker finishes interrupted user creations set-wise (issue 12, P4) with the outcome the
per-row path gives each: the same rows, answers and guarantees; what is not plain (a temporary
password, a failing hook) still goes, and ends, the per-row way. An IdP failure of the batch's
own calls (the look-up of every e-mail, the bulk create) leaves what it covers to the per-row
path, which ends each operation (or postpones it, for a later pass to end): never lost, never
an identity twice."""

from __future__ import annotations

import contextlib
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.model import CredentialMode
from accord.services import bulk_resume, crashpoints, worker
from accord.services.crashpoints import CrashPoint
from accord.services.provisioning import NewUser, create_user
from tests.bulk_faults import BULK_ERRORS, BulkFaults, down, per_row_down
from tests.drift.conftest import sql
from tests.drift.test_bulk_import_fallbacks import counts, done
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import SmtpServer, make_everything_due


@pytest.fixture
def faulty(accord: Accord) -> BulkFaults:
    """The built-in IdP of ``accord``, its bulk calls failing as a test tells them to."""
    idp = BulkFaults(accord.idp)
    accord.idp = idp
    return idp


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


# -- the IdP fails the batch's own calls ----------------------------------------------------------


def mixed(n: int) -> dict[str, CrashPoint]:
    """``n`` creations interrupted in turn: at ``claimed`` before the IdP was asked (no
    identity), at ``claimed`` after it answered (the identity made, stamped with the
    operation's user id), and at ``idp_ensured`` (nothing left to ask the IdP)."""
    cycle = (CrashPoint.AFTER_CLAIM, CrashPoint.IDP_ANSWERED, CrashPoint.AFTER_RECOVERY_POINT)
    return {f"u{i}@example.com": cycle[i % 3] for i in range(n)}


async def settled_once_each(accord: Accord, smtp: SmtpServer, n: int) -> None:
    """``n`` users created once each: one identity each, made for that very user and linked to
    it, every operation succeeded as a new identity (no adoption), every invitation mailed."""
    assert await counts(accord) == done(n)
    own = (
        "SELECT count(*) FROM users u JOIN idp_links l ON l.user_id = u.id "
        "JOIN local_identities i ON i.id = l.remote_id "
        "WHERE i.accord_user_id = u.id::text AND i.email = u.email AND l.created_by_accord"
    )
    assert await scalar(accord, own) == n
    fresh = "SELECT count(*) FROM operations WHERE (result->>'reused_identity')::boolean = false"
    assert await scalar(accord, fresh) == n
    adopted = "SELECT count(*) FROM audit_events WHERE action = 'user.identity_adopted'"
    assert await scalar(accord, adopted) == 0
    assert sorted(str(m["To"]) for m in smtp.inbox.messages) == sorted(mixed(n))
    await assert_guarantees(accord)


@BULK_ERRORS
async def test_a_failed_look_up_leaves_the_batch_to_the_per_row_path(
    accord: Accord,
    faulty: BulkFaults,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    error: errors.AccordError,
) -> None:
    org = await new_org(accord, max_users=12)  # exactly: the claims hold their seats
    await interrupted(accord, monkeypatch, org, mixed(12))
    faulty.find_faults.append(error)
    batches = counted(monkeypatch)
    await make_everything_due(accord)
    result = await worker.run_until_idle(accord, smtp.mailer())
    assert (result.succeeded, result.failed, result.postponed) == (12, 0, 0)
    # Set-wise only the four at idp_ensured (they need no IdP); the eight at claimed went per
    # row, each looking its e-mail up again: the four identities made before are recognised as
    # their operations' own, the other four created once, and no bulk create was tried.
    assert batches == [4]
    assert (faulty.finds, faulty.calls) == (1, 0)
    await settled_once_each(accord, smtp, 12)


@pytest.mark.parametrize("made", [0, 3])
@BULK_ERRORS
async def test_a_failed_bulk_create_leaves_the_batch_to_the_per_row_path(
    accord: Accord,
    faulty: BulkFaults,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    made: int,
    error: errors.AccordError,
) -> None:
    org = await new_org(accord, max_users=12)
    await interrupted(accord, monkeypatch, org, mixed(12))
    faulty.faults.append(down(made, error))  # of the four without an identity, makes ``made``
    batches = counted(monkeypatch)
    await make_everything_due(accord)
    result = await worker.run_until_idle(accord, smtp.mailer())
    assert (result.succeeded, result.failed, result.postponed) == (12, 0, 0)
    # The failed call told nothing, not even about the identities the look-up had found: all
    # eight at claimed went per row; an identity the failed bulk create made carries its
    # operation's user id, so that operation adopts it as its own creation, not a second one.
    assert batches == [4]
    assert (faulty.finds, faulty.calls) == (1, 1)
    await settled_once_each(accord, smtp, 12)


@pytest.mark.parametrize("fault", ["look-up", "bulk create", "bulk create after 3"])
async def test_an_idp_down_for_a_pass_postpones_the_batch_and_the_next_pass_finishes_it(
    accord: Accord,
    faulty: BulkFaults,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    org = await new_org(accord, max_users=12)
    await interrupted(accord, monkeypatch, org, mixed(12))
    made = 3 if fault == "bulk create after 3" else 0
    if fault == "look-up":
        faulty.find_faults.append(errors.ProviderUnavailable("the IdP is down"))
    else:
        faulty.faults.append(down(made))
    batches = counted(monkeypatch)
    await make_everything_due(accord)
    with monkeypatch.context() as m:  # the per-row calls find it down too
        per_row_down(m, faulty)
        first = await worker.run_once(accord, smtp.mailer())
    assert (first.succeeded, first.failed, first.postponed) == (4, 0, 8)
    # Nothing lost: the eight wait at claimed for their next attempt, holding their seats and
    # their e-mails; the identities made so far are theirs (G3 holds, they are not orphans).
    waiting = (
        "SELECT count(*) FROM operations WHERE state = 'open' AND recovery_point = 'claimed' "
        "AND next_attempt_at IS NOT NULL AND lease_until IS NULL "
        "AND error->>'code' = 'idp_unavailable'"
    )
    assert await scalar(accord, waiting) == 8
    assert await scalar(accord, "SELECT count(*) FROM users WHERE status = 'provisioning'") == 8
    assert await scalar(accord, "SELECT count(*) FROM memberships") == 4
    assert await scalar(accord, "SELECT count(*) FROM local_identities") == 8 + made
    await assert_guarantees(accord)

    await make_everything_due(accord)  # the IdP is back
    rest = await worker.run_until_idle(accord, smtp.mailer())
    assert (rest.succeeded, rest.failed, rest.postponed) == (8, 0, 0)
    # Set-wise this time: the look-up recognises the identities made before as the operations'
    # own, and the bulk create makes only the missing ones.
    assert batches == [4, 8]
    assert (faulty.finds, faulty.calls) == (2, 2 if fault != "look-up" else 1)
    await settled_once_each(accord, smtp, 12)


async def test_operations_that_outlive_their_deadline_after_a_failed_bulk_create_are_undone(
    accord: Accord, faulty: BulkFaults, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await new_org(accord, max_users=12)
    await interrupted(accord, monkeypatch, org, mixed(12))
    faulty.faults.append(down(3))  # three identities made, the answer lost
    await make_everything_due(accord)
    with monkeypatch.context() as m:
        per_row_down(m, faulty)
        first = await worker.run_once(accord, smtp.mailer())
    assert (first.succeeded, first.postponed) == (4, 8)
    # The IdP stays away past the operations' deadline; when it is back, none of the eight is
    # plain any more: the per-row path gives each up, deleting the identities their attempts
    # made (those the failed bulk create made too, G7) and their claims.
    await sql(accord, "UPDATE operations SET deadline_at = now() WHERE state = 'open'")
    batches = counted(monkeypatch)
    await make_everything_due(accord)
    rest = await worker.run_until_idle(accord, smtp.mailer())
    assert (rest.succeeded, rest.failed, rest.postponed) == (0, 8, 0)
    assert batches == [0]
    gave_up = "SELECT count(*) FROM operations WHERE error->>'code' = 'retry_budget_exhausted'"
    assert await scalar(accord, gave_up) == 8
    assert await counts(accord) == done(4) | {"ops": 12}
    assert (
        await scalar(accord, "SELECT count(*) FROM memberships WHERE organization_id = :o", o=org)
        == 4
    )
    assert len(smtp.inbox.messages) == 4
    await assert_guarantees(accord)


async def test_a_bulk_create_rejected_for_one_user_fails_only_that_one(
    accord: Accord, faulty: BulkFaults, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The IdP refuses the whole batch for one user it will not take: per row, only that
    one's create is refused, and only that operation fails (compensated, G7)."""
    org = await new_org(accord, max_users=12)
    await interrupted(accord, monkeypatch, org, mixed(12))
    faulty.faults.append(down(0, errors.RemoteRejected("the IdP refused the batch")))
    original = faulty._inner.create

    async def refuses_u3(user: Any) -> Any:
        if user.email == "u3@example.com":  # at claimed, no identity yet
            raise errors.RemoteRejected("the IdP refused u3@example.com")
        return await original(user)

    monkeypatch.setattr(faulty._inner, "create", refuses_u3)
    await make_everything_due(accord)
    result = await worker.run_until_idle(accord, smtp.mailer())
    assert (result.succeeded, result.failed, result.postponed) == (11, 1, 0)
    failed = "SELECT request->>'email', error->>'code' FROM operations WHERE state = 'failed'"
    async with accord.db.transaction() as conn:
        assert (await conn.execute(text(failed))).all() == [("u3@example.com", "idp_rejected")]
    assert await counts(accord) == done(11) | {"ops": 12}
    gone = "SELECT count(*) FROM local_identities WHERE email = 'u3@example.com'"
    assert await scalar(accord, gone) == 0
    assert "u3@example.com" not in {str(m["To"]) for m in smtp.inbox.messages}
    await assert_guarantees(accord)

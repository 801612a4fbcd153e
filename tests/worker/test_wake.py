"""An idle worker wakes on new work (LISTEN/NOTIFY, its timers), not after its poll interval;
and it leases due operations in batches and runs them side by side, beside other workers.

Every worker here polls every 600 s: what finishes within the tests' deadlines (30 s, on a
busy machine) was woken by a notice or by a retry or lease falling due.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import pytest

from accord.adapters.db.work_signal import PgWorkSignal
from accord.bootstrap import Accord, build
from accord.config import Settings
from accord.domain import errors
from accord.domain.ports import Mailer
from accord.services import worker
from accord.services.provisioning import NewUser, create_user
from accord.testing import FakeIdentityProvider, Fault, SimulatedCrash
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees
from tests.mailbox import SmtpServer

DEADLINE = 30.0  # far below the poll interval, far above what a busy machine needs
POLL = 600.0


async def eventually(condition: Callable[[], Any], what: str) -> None:
    """Wait until ``condition()`` (maybe a coroutine) is true, at most ``DEADLINE`` seconds."""
    deadline = time.monotonic() + DEADLINE
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
        await asyncio.sleep(0.05)


class SleepWatch:
    """The worker's own signal, counting the times the worker went to sleep on it."""

    def __init__(self, inner: PgWorkSignal) -> None:
        self.inner = inner
        self.sleeps = 0

    async def wait(self, within: float) -> bool:
        self.sleeps += 1
        return await self.inner.wait(within)

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def running_worker(accord: Accord, mailer: Mailer) -> AsyncIterator[SleepWatch]:
    """``run_forever`` on ``accord``, back once it listens and has gone to sleep idle."""
    assert isinstance(accord.work_signal, PgWorkSignal)
    watch = SleepWatch(accord.work_signal)
    accord.work_signal = watch
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(accord, mailer, stop))
    try:
        await eventually(watch.inner.listening.is_set, "the worker listens")
        # The connection's own first notice wakes it once; the sleep after that is idle.
        await eventually(lambda: watch.sleeps >= 2, "the worker sleeps")
        yield watch
    finally:
        stop.set()
        await task


@pytest.fixture
def slow_poll(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_poll_seconds": POLL})


@pytest.fixture
async def sleepy(slow_poll: Settings, fake_idp: FakeIdentityProvider) -> AsyncIterator[Accord]:
    instance = build(slow_poll, idp=fake_idp)
    try:
        yield instance
    finally:
        await instance.aclose()


def user(org: UUID, email: str = "ada@example.com") -> NewUser:
    return NewUser(email=email, full_name="Ada Lovelace", organization_id=org)


async def state_of(accord: Accord, email: str) -> str | None:
    return await scalar(
        accord, "SELECT state FROM operations WHERE request->>'email' = :email", email=email
    )


def ended(accord: Accord, email: str) -> Callable[[], Any]:
    async def check() -> bool:
        return await state_of(accord, email) not in (None, "open")

    return check


async def test_an_idle_worker_wakes_for_an_operation_a_request_left_it(
    sleepy: Accord, fake_idp: FakeIdentityProvider, smtp: SmtpServer
) -> None:
    org = await new_org(sleepy)
    async with running_worker(sleepy, smtp.mailer()):
        fake_idp.script("create", Fault.UNAVAILABLE)
        with pytest.raises(errors.OperationPending):  # HTTP 202: the worker carries on
            await create_user(sleepy, user(org), caller=PLATFORM, idempotency_key="k")
        # The notice at the postponement's commit wakes it; the retry's time, once known,
        # wakes it again.
        await eventually(ended(sleepy, "ada@example.com"), "the operation ends")
        assert await state_of(sleepy, "ada@example.com") == "succeeded"
        await eventually(lambda: smtp.inbox.to("ada@example.com"), "the invitation is sent")
    await assert_guarantees(sleepy)


async def test_an_idle_worker_wakes_for_mail_another_process_queued(
    sleepy: Accord, slow_poll: Settings, fake_idp: FakeIdentityProvider, smtp: SmtpServer
) -> None:
    org = await new_org(sleepy)
    api = build(slow_poll, idp=fake_idp)  # another process: its commit notifies the worker
    try:
        async with running_worker(sleepy, smtp.mailer()):
            await create_user(api, user(org), caller=PLATFORM)  # finished at once
            await eventually(lambda: smtp.inbox.to("ada@example.com"), "the invitation")
    finally:
        await api.aclose()


async def test_a_worker_wakes_when_a_crashed_runner_s_lease_runs_out(
    slow_poll: Settings, fake_idp: FakeIdentityProvider, smtp: SmtpServer
) -> None:
    settings = slow_poll.model_copy(update={"operation_lease_seconds": 3.0})
    accord = build(settings, idp=fake_idp)
    try:
        org = await new_org(accord)
        fake_idp.script("create", Fault.CRASH)  # the runner dies with the lease held
        with pytest.raises(SimulatedCrash):
            await create_user(accord, user(org), caller=PLATFORM)
        # Nobody sends a notice when a lease runs out: the worker's timer knows when.
        async with running_worker(accord, smtp.mailer()):
            await eventually(ended(accord, "ada@example.com"), "the operation ends")
        assert await state_of(accord, "ada@example.com") == "succeeded"
        await assert_guarantees(accord)
    finally:
        await accord.aclose()


class Gate:
    """An IdP whose look-ups wait until ``width`` of them are in flight at once (at most
    ``DEADLINE``), then all pass: how many ran side by side, at most, is ``most``."""

    def __init__(self, inner: FakeIdentityProvider, width: int) -> None:
        self._inner, self._width = inner, width
        self.name = inner.name
        self.in_flight = self.most = 0
        self._open = asyncio.Event()

    async def find_by_email(self, email: str) -> Any:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            if self.in_flight >= self._width:
                self._open.set()
            await asyncio.wait_for(self._open.wait(), DEADLINE)
            return await self._inner.find_by_email(email)
        finally:
            self.in_flight -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_workers_lease_in_batches_and_run_them_side_by_side(
    settings: Settings, fake_idp: FakeIdentityProvider, smtp: SmtpServer
) -> None:
    width, count = 4, 40
    settings = settings.model_copy(update={"worker_concurrency": width})
    api = build(settings, idp=fake_idp)
    gates = [Gate(fake_idp, width) for _ in range(2)]
    workers = [build(settings, idp=gate) for gate in gates]
    try:
        org = await new_org(api, max_users=count)
        fake_idp.script("find_by_email", Fault.CRASH, times=count)
        for n in range(count):
            with pytest.raises(SimulatedCrash):
                await create_user(api, user(org, f"u{n}@example.com"), caller=PLATFORM)
        await scalar(api, "UPDATE operations SET lease_until = now() RETURNING 1")
        passes = await asyncio.gather(*(worker.run_until_idle(w, smtp.mailer()) for w in workers))
        assert sum(p.succeeded for p in passes) == count
        assert sum(p.failed + p.postponed for p in passes) == 0
        # Side by side, never more than the width (each worker's first batch fills it, unless
        # the other took nearly everything first).
        assert max(gate.most for gate in gates) == width
        assert all(gate.most <= width for gate in gates)
        states = await scalar(api, "SELECT array_agg(DISTINCT state) FROM operations")
        assert states == ["succeeded"]
        await assert_guarantees(api)
    finally:
        for instance in (api, *workers):
            await instance.aclose()

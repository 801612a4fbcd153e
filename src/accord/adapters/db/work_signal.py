"""Waking the workers: PostgreSQL ``NOTIFY`` when work falls due, ``LISTEN`` in the worker.

A transaction that leaves work for a worker (an operation postponed or given back, mail queued,
feed events written, webhook deliveries added) marks its ``WorkNotice``; ``PgStore`` sends one
``NOTIFY accord_work`` at its end, inside it, so PostgreSQL delivers it at the commit (never
for a rollback) to every listening worker. ``PgWorkSignal`` is the listening side: one
connection of its own per worker process (not from the pool: it is held for ever), read with
psycopg's ``notifies()``.

What a notice cannot tell, the worker's timer and poll cover: a lease that runs out (nobody is
there to send anything; ``Operations.due_in`` says when), a notice sent while no listener was
connected (on every (re)connection the signal fires once, as if one had come).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

CHANNEL = "accord_work"
NOTIFY_WORK = select(func.pg_notify(CHANNEL, ""))
RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)  # between attempts to listen again (then the last)

log = logging.getLogger(__name__)


class WorkNotice:
    """Whether this transaction left work for a worker (then it notifies once, at its end)."""

    __slots__ = ("due",)

    def __init__(self) -> None:
        self.due = False

    def mark(self) -> None:
        self.due = True


def _conninfo(url: str) -> str:
    """libpq's form of accord's database URL (which may name SQLAlchemy's driver)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgWorkSignal:
    """``WorkSignal`` on PostgreSQL: ``LISTEN accord_work`` on a connection of its own, opened
    at the first ``wait`` (a process that never waits never connects) and opened again after
    a failure."""

    def __init__(self, database_url: str) -> None:
        self._conninfo = _conninfo(database_url)
        self._noticed = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        # Set while the LISTEN is in place: for tests and ``accord doctor``-like checks.
        self.listening = asyncio.Event()

    async def wait(self, within: float) -> bool:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="accord-work-signal")
        try:
            await asyncio.wait_for(self._noticed.wait(), timeout=max(within, 0.0))
        except TimeoutError:
            return False
        self._noticed.clear()
        return True

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen_once()
            except (psycopg.Error, OSError) as exc:
                log.warning("not listening for work notices (polling meanwhile): %s", exc)
            if self.listening.is_set():
                failures = 0  # it listened a while: start the backoff over
            self.listening.clear()
            await asyncio.sleep(RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)])
            failures += 1

    async def _listen_once(self) -> None:
        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        async with conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            self._noticed.set()  # notices sent before this one listened are lost: look once
            async for _ in conn.notifies():
                self._noticed.set()

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        self.listening.clear()

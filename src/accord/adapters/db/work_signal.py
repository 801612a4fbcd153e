"""Waking the workers: PostgreSQL ``NOTIFY`` when work falls due, ``LISTEN`` in the worker.

A transaction that leaves work for a worker (an operation postponed, mail queued, feed events
written, webhook deliveries added) marks its ``WorkNotice``; once it has committed, ``PgStore``
pokes its ``WorkNotifier``, which sends ``NOTIFY accord_work`` as a statement alone
(autocommit, on the statement pool), one for all the pokes of ``COALESCE_SECONDS``.
``PgWorkSignal`` is the listening side: one connection of its own per worker process (not
from a pool: it is held for ever), read with psycopg's ``notifies()``.

Why not ``NOTIFY`` inside the transaction that made the work (delivered at its commit, the
textbook way): PostgreSQL serializes the commits of notifying transactions on one lock held
through their WAL flush (``PreCommit_Notify``), so group commit is lost. Measured here with
pgbench (a one-row INSERT per transaction, 8 clients): 3,100-3,800 TPS, 710-750 with a
``pg_notify`` in each. Every change writes a feed event, so that cap would be every write's.
A notify-only transaction writes no WAL and holds the lock for an instant; coalesced, a
process sends at most ``1 / COALESCE_SECONDS`` of them a second.

What a notice cannot tell, the worker's timer and poll cover: a lease that runs out (nobody is
there to send anything; ``Operations.due_in`` says when), a notice lost (the process died
between its commit and the notice, no listener connected: on every (re)connection the signal
fires once, as if one had come).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from accord.adapters.db.database import Database
from accord.adapters.db.direct import Direct
from accord.domain.errors import StorageUnavailable

CHANNEL = "accord_work"
_NOTIFY_WORK = Direct(select(func.pg_notify(CHANNEL, "")))
COALESCE_SECONDS = 0.01  # the pokes of this long share one NOTIFY
RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)  # between attempts to listen again (then the last)

log = logging.getLogger(__name__)


class WorkNotice:
    """Whether this transaction left work for a worker (then a notice follows its commit)."""

    __slots__ = ("due",)

    def __init__(self) -> None:
        self.due = False

    def mark(self) -> None:
        self.due = True


class WorkNotifier:
    """Sends ``NOTIFY accord_work`` after commits that left work: one at a time, the pokes
    that come meanwhile folded into the next. A failure is logged and forgotten (the workers
    poll)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._sending: asyncio.Task[None] | None = None
        self._again = False

    def poke(self) -> None:
        """Call after a commit that left work for a worker."""
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send(), name="accord-work-notice")
        else:
            self._again = True

    async def _send(self) -> None:
        while True:
            await asyncio.sleep(COALESCE_SECONDS)  # let the commits of this instant join
            self._again = False
            try:
                # Autocommit: a NOTIFY needs no transaction of its own, and sent outside one
                # it is delivered at once, without the BEGIN and COMMIT round trips.
                async with self._db.statement() as conn:
                    await _NOTIFY_WORK.run(conn, {})
            except (StorageUnavailable, OSError) as exc:
                log.warning("a work notice was not sent (the workers poll): %s", exc)
            if not self._again:
                return

    async def aclose(self) -> None:
        """Send what is pending (before the engine is disposed)."""
        if self._sending is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._sending
            self._sending = None


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
        # Set while the LISTEN is in place (tests wait for it).
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

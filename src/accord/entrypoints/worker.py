"""``accord worker``: the background process that finishes operations and sends mail."""

from __future__ import annotations

import asyncio
import signal

from rich.console import Console

from accord.bootstrap import Accord, build_mailer
from accord.services import worker

err = Console(stderr=True, soft_wrap=True, highlight=False)


async def run(accord: Accord, *, once: bool) -> worker.Pass | None:
    """Run the worker on ``accord`` until SIGTERM/SIGINT (or, with ``once``, until idle)."""
    mailer = build_mailer(accord.settings, accord.store)
    if once:
        return await worker.run_until_idle(accord, mailer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    err.print(f"accord worker running (IdP: {accord.idp.name}); SIGTERM stops it gracefully")
    await worker.run_forever(accord, mailer, stop)
    err.print("accord worker stopped: the pass in hand was finished")
    return None

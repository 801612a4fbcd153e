"""``FakeWorkSignal``: the work notices of one process, for tests of the worker's sleep."""

from __future__ import annotations

import asyncio


class FakeWorkSignal:
    """A ``WorkSignal`` that ``notify`` fires; ``waits`` records how long each wait was allowed
    (what the worker asked: its poll interval, or the time until a retry falls due)."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self._noticed = asyncio.Event()

    def notify(self) -> None:
        """What a commit that leaves work does on PostgreSQL (``NOTIFY``)."""
        self._noticed.set()

    async def wait(self, within: float) -> bool:
        self.waits.append(within)
        try:
            await asyncio.wait_for(self._noticed.wait(), timeout=max(within, 0.0))
        except TimeoutError:
            return False
        self._noticed.clear()
        return True

    async def aclose(self) -> None:
        return None

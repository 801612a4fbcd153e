"""The ``Throttle`` port in memory: moving windows on a clock the test moves."""

from __future__ import annotations

from collections import defaultdict

import limits

from accord.domain.ports import Clock


class FakeThrottle:
    """Moving windows of attempt times per key and limit, as ``LimitsThrottle`` keeps them."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._hits: dict[str, list[float]] = defaultdict(list)  # key → times, oldest first

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _live(self, key: str, item: limits.RateLimitItem) -> list[float]:
        since = self._now() - item.get_expiry()
        return [at for at in self._hits[item.key_for(key)] if at > since]

    def _wait(self, live: list[float], item: limits.RateLimitItem) -> float:
        return max(1.0, live[0] + item.get_expiry() - self._now())

    async def hit(self, key: str, rule: str) -> float | None:
        waits = []
        for item in limits.parse_many(rule):
            live = self._live(key, item)
            if len(live) >= item.amount:
                waits.append(self._wait(live, item))
            else:
                self._hits[item.key_for(key)] = [*live, self._now()]
        return max(waits) if waits else None

    async def blocked(self, key: str, rule: str) -> float | None:
        waits = [
            self._wait(live, item)
            for item in limits.parse_many(rule)
            if len(live := self._live(key, item)) >= item.amount
        ]
        return max(waits) if waits else None

    async def reset(self, key: str, rule: str) -> None:
        for item in limits.parse_many(rule):
            self._hits.pop(item.key_for(key), None)

    async def sweep(self, *, limit: int) -> int:
        return 0  # windows are trimmed as they are read

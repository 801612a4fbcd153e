"""Fault injection shared by every emulator.

A ``FaultConfig`` says what can go wrong; a ``FaultInjector`` decides, request by request, with a
seeded random generator (so a failing run can be replayed with the same ``--seed``), whether this
request is delayed, rate-limited, answered with a 5xx, left to time out, or (for creates) stored
and then answered with an error: a "ghost" create.

Vendors differ in how errors and 429s look on the wire, so the injector asks a ``Dialect`` for the
response bodies and headers. ``FaultInjector.endpoint`` puts a handler behind its faults and turns
an ``Answer`` raised inside it into the response. Run-time control: ``GET``/``PUT /__faults``
(merge a partial config), ``POST /__faults/burst`` (``{"count": N}``: the next N requests get 429),
``POST /__faults/next`` (``{"endpoint": E, "fault": F, "count": N}``: the next N requests of
endpoint E fail with F, one of ``SCRIPTED_FAULTS``) and ``POST /__faults/reset``.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CONTROL_PREFIX = "/__faults"
# What a scripted request gets: unavailable = 503 (refused, nothing done), server_error = 500,
# rate_limited = the dialect's 429, timeout = hang then 504 (nothing done), ghost = a create is
# stored and then answered like a ghost (only endpoints whose handler asks ``ghost(endpoint)``).
SCRIPTED_FAULTS = ("unavailable", "server_error", "rate_limited", "timeout", "ghost")

Handler = Callable[[Request], Awaitable[Response]]


class Answer(Exception):
    """A finished response, raised from anywhere inside an emulator's handler."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response

    @classmethod
    def json(cls, status: int, **body: Any) -> Answer:
        """An answer whose body is ``body`` as a JSON object."""
        return cls(JSONResponse(body, status_code=status))


def retry_after(reset_epoch: int) -> str:
    """A ``Retry-After`` value for a limit that resets at ``reset_epoch``: at least one second."""
    return str(max(1, reset_epoch - int(time.time())))


@dataclass(frozen=True)
class FaultConfig:
    """What can go wrong, and how often. Rates are probabilities per request (0..1)."""

    latency_ms: float = 0.0  # fixed delay on every request
    latency_jitter_ms: float = 0.0  # plus a uniform random delay in [0, jitter)
    error_rate: float = 0.0  # 5xx on any admin endpoint
    endpoint_error_rates: dict[str, float] = field(default_factory=dict)  # by endpoint name
    ghost_rate: float = 0.0  # creates: stored, then answered with an error (or never answered)
    ghost_hang: bool = False  # ghosts hang until the client times out instead of a 5xx
    timeout_rate: float = 0.0  # hang (then 504) without doing the work
    hang_seconds: float = 30.0  # how long a hang lasts
    rate_limit: int | None = None  # requests per second before 429 (token bucket)
    search_lag_ms: float = 0.0  # eventually consistent search (Auth0 /users?q=)
    seed: int | None = None
    # updates (e-mail, name): applied, then answered with a 5xx, as a lost answer
    write_ghost_rate: float = 0.0

    def merged(self, changes: dict[str, Any]) -> FaultConfig:
        """A copy with ``changes`` applied; unknown keys raise ValueError."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        return replace(self, **changes)


class Dialect(Protocol):
    """How one vendor's error responses look."""

    def server_error(self, status: int) -> Response: ...

    def rate_limited(self, limit: int, reset_epoch: int) -> Response: ...

    def rate_limit_headers(self, limit: int, remaining: int, reset_epoch: int) -> dict[str, str]:
        """Headers the vendor sends on every response (Auth0: x-ratelimit-*), or {}."""
        ...


@dataclass
class _Bucket:
    capacity: int
    tokens: float
    updated: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.capacity)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class FaultInjector:
    """Applies a FaultConfig to requests. One per emulator app."""

    def __init__(self, dialect: Dialect, config: FaultConfig | None = None) -> None:
        self.dialect = dialect
        self.stats: dict[str, int] = {}
        self.scripted: dict[str, deque[str]] = defaultdict(deque)  # endpoint -> next faults
        self.configure(config or FaultConfig())

    def script(self, endpoint: str, fault: str, count: int = 1) -> None:
        """Make the next ``count`` requests of ``endpoint`` fail with ``fault``."""
        if fault not in SCRIPTED_FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(SCRIPTED_FAULTS)}")
        self.scripted[endpoint].extend([fault] * count)

    def _take_scripted(self, endpoint: str, *, ghost: bool) -> str | None:
        queue = self.scripted.get(endpoint)
        if not queue or (queue[0] == "ghost") != ghost:
            return None
        return queue.popleft()

    async def _scripted_response(self, fault: str) -> Response:
        self._count(f"scripted_{fault}")
        if fault == "rate_limited":
            return self.dialect.rate_limited(
                self.config.rate_limit or 50, math.ceil(time.time()) + 1
            )
        if fault == "timeout":
            await asyncio.sleep(self.config.hang_seconds)
            return self.dialect.server_error(504)
        return self.dialect.server_error(503 if fault == "unavailable" else 500)

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self.random = random.Random(config.seed)
        self.burst_remaining = 0
        self._bucket = (
            _Bucket(config.rate_limit, config.rate_limit, time.monotonic())
            if config.rate_limit
            else None
        )

    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    def headers(self) -> dict[str, str]:
        """Rate-limit headers for a normal response."""
        limit = self.config.rate_limit or 50
        remaining = int(self._bucket.tokens) if self._bucket else limit
        return self.dialect.rate_limit_headers(limit, remaining, math.ceil(time.time()) + 1)

    async def before(self, endpoint: str) -> Response | None:
        """Delay the request; return a response that replaces it, or None to proceed."""
        cfg = self.config
        delay = cfg.latency_ms + (
            self.random.uniform(0, cfg.latency_jitter_ms) if cfg.latency_jitter_ms else 0
        )
        if delay:
            await asyncio.sleep(delay / 1000)
        scripted = self._take_scripted(endpoint, ghost=False)
        if scripted:
            return await self._scripted_response(scripted)
        if self.burst_remaining > 0 or (self._bucket and not self._bucket.take(time.monotonic())):
            self.burst_remaining = max(0, self.burst_remaining - 1)
            self._count("rate_limited")
            return self.dialect.rate_limited(cfg.rate_limit or 50, math.ceil(time.time()) + 1)
        if cfg.timeout_rate and self.random.random() < cfg.timeout_rate:
            self._count("timeouts")
            await asyncio.sleep(cfg.hang_seconds)
            return self.dialect.server_error(504)
        rate = cfg.endpoint_error_rates.get(endpoint, cfg.error_rate)
        if rate and self.random.random() < rate:
            self._count("errors")
            return self.dialect.server_error(self.random.choice((500, 502, 503)))
        return None

    def endpoint(self, name: str, handler: Handler) -> Handler:
        """``handler`` behind the faults of endpoint ``name``; an ``Answer`` it raises is sent.

        Faults come first: they stand for the network or a proxy in front of the vendor.
        """

        async def run(request: Request) -> Response:
            replaced = await self.before(name)
            if replaced is not None:
                return replaced
            try:
                return await handler(request)
            except Answer as answer:
                return answer.response

        return run

    def ghost(self, endpoint: str | None = None) -> bool:
        """Whether this create should be a ghost (decided once per create)."""
        scripted = endpoint is not None and self._take_scripted(endpoint, ghost=True) is not None
        hit = scripted or (
            bool(self.config.ghost_rate) and self.random.random() < self.config.ghost_rate
        )
        if hit:
            self._count("ghosts")
        return hit

    def ghost_write(self, endpoint: str) -> bool:
        """Whether this update, already applied, should lose its answer (decided once)."""
        scripted = self._take_scripted(endpoint, ghost=True) is not None
        rate = self.config.write_ghost_rate
        hit = scripted or (bool(rate) and self.random.random() < rate)
        if hit:
            self._count("write_ghosts")
        return hit

    async def ghost_response(self) -> Response:
        """The answer a ghost create gets: a 5xx, or nothing until the client gives up."""
        if self.config.ghost_hang:
            await asyncio.sleep(self.config.hang_seconds)
        return self.dialect.server_error(500 if not self.config.ghost_hang else 504)

    def search_visible(self, created_at: float) -> bool:
        """Whether a user created at ``created_at`` (monotonic) shows in lagging search yet."""
        return time.monotonic() - created_at >= self.config.search_lag_ms / 1000

    # -- run-time control ----------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """The control endpoints, to mount on the emulator app."""

        async def show(_: Request) -> Response:
            scripted = {k: list(v) for k, v in self.scripted.items() if v}
            return JSONResponse(
                {"config": asdict(self.config), "stats": self.stats, "scripted": scripted}
            )

        async def change(request: Request) -> Response:
            try:
                self.configure(self.config.merged(await request.json()))
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse({"config": asdict(self.config)})

        async def burst(request: Request) -> Response:
            body = await request.json()
            self.burst_remaining = int(body.get("count", 10))
            return JSONResponse({"burst_remaining": self.burst_remaining})

        async def next_requests(request: Request) -> Response:
            body = await request.json()
            try:
                self.script(str(body["endpoint"]), str(body["fault"]), int(body.get("count", 1)))
            except (KeyError, ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse({"scripted": {k: list(v) for k, v in self.scripted.items() if v}})

        async def reset(_: Request) -> Response:
            self.configure(FaultConfig(seed=self.config.seed))
            self.stats.clear()
            self.scripted.clear()
            return JSONResponse({"config": asdict(self.config)})

        return [
            Route(CONTROL_PREFIX, show, methods=["GET"]),
            Route(CONTROL_PREFIX, change, methods=["PUT", "PATCH"]),
            Route(f"{CONTROL_PREFIX}/burst", burst, methods=["POST"]),
            Route(f"{CONTROL_PREFIX}/next", next_requests, methods=["POST"]),
            Route(f"{CONTROL_PREFIX}/reset", reset, methods=["POST"]),
        ]

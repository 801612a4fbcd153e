"""A whole ``Context`` made of doubles: the use cases with no database, no IdP, no mail server.

ctx = fake_context()
org = await create_organization(ctx, NewOrganization("Acme"), caller=PLATFORM)
ctx.idp.script("create", Fault.TIMEOUT)   # the next create times out
ctx.clock.advance(seconds=60)             # leases expire, retries come due
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from accord.adapters.sealing import Sealer
from accord.config import Settings
from accord.services.context import Context
from accord.services.flows import flow_table
from accord.services.hooks import Hooks
from accord.testing.fake_idp import FakeIdentityProvider
from accord.testing.memory_store import InMemoryStore
from accord.testing.memory_throttle import FakeThrottle

_FIXED_KEY = hashlib.sha256(b"accord.testing: a key for tests only").digest()


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, *, seconds: float = 0.0, hours: float = 0.0) -> None:
        self._now += timedelta(seconds=seconds, hours=hours)


@dataclass
class SentMail:
    recipient: str
    subject: str
    body: str


@dataclass
class FakeMailer:
    """Records what it sends; ``fail_next`` makes the next sends raise, as a server outage;
    ``sessions`` counts the sessions opened (a delivery pass with mail to send opens one)."""

    sent: list[SentMail] = field(default_factory=list)
    fail_next: int = 0
    sessions: int = 0

    @asynccontextmanager
    async def session(self) -> AsyncIterator[FakeMailer]:
        self.sessions += 1
        yield self

    async def send(self, recipient: str, subject: str, body: str) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError("the fake mail server is down")
        self.sent.append(SentMail(recipient, subject, body))


@dataclass
class FakeContext(Context):
    """A Context whose parts are the doubles (typed as such, for tests to steer)."""

    store: InMemoryStore = field(kw_only=True)
    idp: FakeIdentityProvider = field(kw_only=True)
    clock: ManualClock = field(kw_only=True)
    throttle: FakeThrottle = field(kw_only=True)


def fake_context(
    *,
    settings: Settings | None = None,
    idp: FakeIdentityProvider | None = None,
    hooks: Hooks | None = None,
) -> FakeContext:
    """A Context on an in-memory store, the fake IdP, a manual clock and a fixed key."""
    clock = ManualClock()
    return FakeContext(
        settings=settings or Settings(idp="local"),
        sealer=Sealer(_FIXED_KEY),
        flows=flow_table(),
        hooks=hooks or Hooks(),
        store=InMemoryStore(clock),
        idp=idp or FakeIdentityProvider(),
        clock=clock,
        throttle=FakeThrottle(clock),
    )

"""Webhook endpoints and their deliveries (Standard Webhooks v1): the records and the rules.

An endpoint receives the change feed's events (``services/events.py``) of its types (all when
none are named) and its organization (all for a platform endpoint). The worker fans each new
event out into one delivery per matching endpoint and delivers it at least once, signed, with
the event id as ``webhook-id`` on every attempt (``services/webhook_delivery.py``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

SECRET_PREFIX = "whsec_"
# Svix's published schedule: the first attempt at once, then these waits after each failure.
RETRY_DELAYS_SECONDS = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
MAX_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1
JITTER = 0.1  # ±10 %: endpoints that failed together do not all come back together
ROTATION_OVERLAP_HOURS = 24.0  # after a rotation, the old secret signs too for so long
FAILING_DAYS_BEFORE_DISABLE = 5.0
TIMEOUT_SECONDS = 15.0
PER_ENDPOINT_IN_FLIGHT = 8  # deliveries of one endpoint under way at once (different subjects)
MAX_RETRY_AFTER_SECONDS = 36000.0


@dataclass(frozen=True)
class WebhookEndpoint:
    """A registered receiver. ``organization_id`` None: a platform endpoint (every event)."""

    id: UUID
    url: str
    event_types: tuple[str, ...]
    organization_id: UUID | None
    enabled: bool
    disabled_reason: str | None
    sealed_secrets: bytes
    cursor: int
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewEndpoint:
    id: UUID
    url: str
    event_types: tuple[str, ...]
    organization_id: UUID | None
    sealed_secrets: bytes


@dataclass(frozen=True)
class WebhookDelivery:
    """One event for one endpoint: its attempts so far and how the last one went."""

    id: int
    endpoint_id: UUID
    event_id: UUID
    event_type: str
    position: int
    subject: str
    payload: dict[str, Any]
    status: str  # pending | succeeded | failed (given up)
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    last_latency_ms: float | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class Attempt:
    """How one HTTP attempt went: ``status`` None when no answer came (refused, timeout)."""

    status: int | None
    latency_ms: float
    error: str | None = None
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        """410: the receiver says the endpoint is gone for good (it is disabled)."""
        return self.status == 410


def retry_delay(attempts: int, attempt: Attempt, *, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1-based), jittered;
    a ``Retry-After`` on 429/503 waits at least that long."""
    base = RETRY_DELAYS_SECONDS[min(attempts, len(RETRY_DELAYS_SECONDS)) - 1]
    delay = base * (1 + (rng or random).uniform(-JITTER, JITTER))
    if attempt.status in (429, 503) and attempt.retry_after is not None:
        delay = max(delay, min(attempt.retry_after, MAX_RETRY_AFTER_SECONDS))
    return delay


def subject_key(subject_type: str, subject_id: str) -> str:
    """What per-subject order is kept by."""
    return f"{subject_type}:{subject_id}"


class WebhookTargets(Protocol):
    """Sends deliveries over HTTP (``adapters/webhooks/http.py``)."""

    async def check(self, url: str) -> None:
        """Raise ``WebhookTargetRefused`` when ``url`` is not a public http(s) target (it
        resolves to a loopback, private, link-local or metadata address and private targets
        are not allowed)."""
        ...

    async def send(
        self, url: str, *, secrets: Sequence[str], message_id: str, body: dict[str, Any]
    ) -> Attempt:
        """POST ``body`` signed with every secret; never raises for what the receiver or the
        network did (that is the ``Attempt``), only ``WebhookTargetRefused``."""
        ...


class WebhookStore(Protocol):
    """Endpoints and deliveries (``adapters/db/webhooks.py``). Leases make a delivery one
    worker's at a time; a lease that outlives its worker makes the delivery due again."""

    async def create(self, endpoint: NewEndpoint) -> WebhookEndpoint:
        """Store the endpoint, enabled, reading the feed from its current head."""
        ...

    async def get(self, endpoint_id: UUID, *, lock: bool = False) -> WebhookEndpoint | None:
        """The endpoint; ``lock``: locked to this transaction (its writers wait)."""
        ...

    async def all(self, organization_id: UUID | None) -> list[WebhookEndpoint]:
        """All endpoints (None) or one organization's, oldest first."""
        ...

    async def update(self, endpoint_id: UUID, **changes: Any) -> WebhookEndpoint | None:
        """Set columns (url, event_types, enabled, disabled_reason, sealed_secrets, cursor,
        failing_since); None if there is no such endpoint."""
        ...

    async def delete(self, endpoint_id: UUID) -> bool: ...

    async def lock_for_fanout(self, *, limit: int) -> list[WebhookEndpoint]:
        """Enabled endpoints no other worker is fanning out to, locked to this transaction."""
        ...

    async def add_deliveries(self, endpoint_id: UUID, rows: Sequence[dict[str, Any]]) -> int:
        """Insert deliveries (event_id, event_type, position, subject, payload); an event
        already there (a replay) becomes pending again with no attempts. How many."""
        ...

    async def lease_due(
        self, *, limit: int, per_endpoint: int, lease_seconds: float
    ) -> list[WebhookDelivery]:
        """Lease due deliveries of enabled endpoints, counting the attempt: never one whose
        subject has an earlier pending delivery for the endpoint, never more than
        ``per_endpoint`` under way for one endpoint."""
        ...

    async def finish(
        self, delivery_id: int, attempt: Attempt, *, status: str, retry_in: float | None
    ) -> None:
        """Record an attempt: ``status`` the delivery's new state; when pending, due again
        in ``retry_in`` seconds. The lease ends."""
        ...

    async def deliveries(self, endpoint_id: UUID, *, limit: int) -> list[WebhookDelivery]:
        """The endpoint's latest deliveries, newest first."""
        ...

    async def platform_admin_emails(self) -> list[str]:
        """Whom to tell when an endpoint is disabled: the live platform administrators."""
        ...

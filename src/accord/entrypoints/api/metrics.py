"""Prometheus metrics for one application: its own registry, so several apps (tests, workers)
never collide. Operations are counted by kind and outcome where the routes run them; the number
of open operations is read from the database on each scrape, so it is the same whichever
process answers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from accord.domain import errors
from accord.domain.model import OperationKind

if TYPE_CHECKING:
    from accord.bootstrap import Accord

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The application's metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.operations = Counter(
            "accord_operations",
            "Operations requested over HTTP, by kind and outcome "
            "(succeeded, pending, failed: the error code).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.operation_seconds = Histogram(
            "accord_operation_duration_seconds",
            "Time to answer an operation request; dominated by the identity provider's calls.",
            ["kind"],
            registry=self.registry,
        )
        self.idp_seconds = Histogram(
            "accord_idp_call_duration_seconds",
            "Latency of identity provider calls made by the HTTP layer (readiness checks).",
            ["call", "outcome"],
            registry=self.registry,
        )
        self.open_operations = Gauge(
            "accord_operations_open",
            "Operations not finished yet (pending in the background), by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.requests = Counter(
            "accord_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "accord_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )

    @asynccontextmanager
    async def operation(self, kind: OperationKind) -> AsyncIterator[None]:
        """Count and time one operation request, whatever its outcome."""
        started = time.perf_counter()
        outcome = "succeeded"
        try:
            yield
        except errors.OperationPending:
            outcome = "pending"
            raise
        except errors.AccordError as error:
            outcome = error.code
            raise
        except Exception:
            outcome = "internal_error"
            raise
        finally:
            self.operations.labels(kind.value, outcome).inc()
            self.operation_seconds.labels(kind.value).observe(time.perf_counter() - started)

    @asynccontextmanager
    async def idp_call(self, call: str) -> AsyncIterator[None]:
        """Time one identity provider call."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            yield
        except Exception as error:
            outcome = getattr(error, "code", "error")
            raise
        finally:
            self.idp_seconds.labels(call, outcome).observe(time.perf_counter() - started)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count and time one HTTP request."""
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route).observe(seconds)

    async def render(self, accord: Accord) -> bytes:
        """The exposition text, with the open-operations gauge freshly read."""
        try:
            async with accord.store.transaction() as tx:
                counts = await tx.operations.open_by_kind()
        except errors.AccordError:
            counts = None  # the database is down: keep the last known values
        if counts is not None:
            for kind in OperationKind:
                self.open_operations.labels(kind.value).set(counts.get(kind.value, 0))
        return generate_latest(self.registry)

"""What the routes share: running an operation (metrics, operation id for the access log)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from accord.domain.model import OperationKind
from accord.entrypoints.api.metrics import Metrics


def metrics_of(request: Request) -> Metrics:
    """The application's metrics."""
    return request.app.state.metrics


async def run_operation(
    request: Request, kind: OperationKind, start: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Run an operation's service call, counted, timed and tagged with its id for the log."""
    async with metrics_of(request).operation(kind):
        result = await start()
    request.state.operation_id = result.get("operation_id")
    return result

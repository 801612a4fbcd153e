"""Liveness, readiness and metrics: for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from accord.adapters.db import migrate
from accord.bootstrap import Accord
from accord.domain import errors
from accord.entrypoints.api.metrics import CONTENT_TYPE
from accord.entrypoints.api.problems import documented
from accord.entrypoints.api.routing import metrics_of
from accord.entrypoints.api.schemas import Health, Readiness
from accord.entrypoints.api.security import AccordDep

router = APIRouter(tags=["operations and health"])

CHECK_TIMEOUT_SECONDS = 5.0


@router.get(
    "/healthz",
    response_model=Health,
    responses=documented(),
    summary="Liveness: the process is up",
)
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


async def _check(probe: Callable[[], Awaitable[None]]) -> str:
    """``ok``, or the fault's code (never its text: it could hold a URL or a vendor message)."""
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return "timeout"
    except errors.AccordError as error:
        return error.code
    except Exception as error:
        return type(error).__name__
    return "ok"


async def _database(accord: Accord) -> None:
    async with accord.store.transaction() as tx:
        await tx.ping()


async def _migrations(accord: Accord) -> None:
    current = await asyncio.to_thread(migrate.current_revision, accord.database_url)
    head = await asyncio.to_thread(migrate.head_revision)
    if current != head:
        raise errors.ConfigurationError(f"database at {current}, accord expects {head}")


async def readiness(request: Request, accord: Accord) -> dict[str, str]:
    """Each dependency's state: database, migrations, identity provider."""
    checks = {"database": await _check(lambda: _database(accord))}
    if checks["database"] == "ok":
        checks["migrations"] = await _check(lambda: _migrations(accord))
    else:
        checks["migrations"] = "unknown"

    async def idp() -> None:
        async with metrics_of(request).idp_call("check"):
            await accord.idp.check()

    checks["idp"] = await _check(idp)
    return checks


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {"model": Readiness, "description": "Not ready: see `checks`."},
        **documented(),
    },
    summary="Readiness: database reachable, migrations current, identity provider reachable",
)
async def readyz(request: Request, accord: AccordDep) -> Any:
    """200 when every check is ``ok``, else 503 with the failing checks."""
    checks = await readiness(request, accord)
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return body if ready else JSONResponse(body, status_code=503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics."},
        **documented(),
    },
    summary="Prometheus metrics",
)
async def metrics(request: Request, accord: AccordDep) -> Response:
    """Operations by kind and outcome, latencies, open operations, HTTP requests."""
    body = await metrics_of(request).render(accord)
    return Response(body, media_type=CONTENT_TYPE)

"""The FastAPI application: thin routes over the same service functions the CLI uses.

``create_app(accord)`` serves an Accord its caller built and will close; ``create_app()``
builds one from the environment when the server starts and closes it when it stops.
``app_from_environment`` is the factory ``accord serve`` hands to uvicorn (by import string,
so that ``--workers N`` can start it in every worker process).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from accord.bootstrap import Accord, build
from accord.config import Settings
from accord.entrypoints.api import (
    openapi,
    problems,
    routes_audit,
    routes_auth,
    routes_events,
    routes_health,
    routes_invitations,
    routes_mailbox,
    routes_members,
    routes_operations,
    routes_organizations,
    routes_users,
    routes_webhooks,
)
from accord.entrypoints.api.logs import configure_logging
from accord.entrypoints.api.metrics import Metrics
from accord.entrypoints.api.middleware import RequestMiddleware
from accord.entrypoints.api.serving import HeaderTimeoutProtocol
from accord.entrypoints.scim.app import create_scim_app

MAX_BODY_BYTES = 64 * 1024
ROUTERS = (
    routes_auth,
    routes_users,
    routes_organizations,
    routes_operations,
    routes_audit,
    routes_events,
    routes_webhooks,
    routes_health,
    routes_members,
    routes_mailbox,
)


def _version() -> str:
    try:
        return version("accord")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


@asynccontextmanager
async def _in_process_worker(accord: Accord) -> AsyncIterator[None]:
    """``accord serve`` runs a worker beside the API unless told not to (``--no-worker``)."""
    if not accord.settings.serve_worker:
        yield
        return
    from accord.bootstrap import build_mailer
    from accord.services.worker import run_forever

    stop = asyncio.Event()
    mailer = build_mailer(accord.settings, accord.store)
    task = asyncio.create_task(run_forever(accord, mailer, stop))
    try:
        yield
    finally:
        stop.set()  # the pass in hand finishes; its leases end with it
        await task


def _lifespan(given: Accord | None, make: Callable[[], Accord]) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if given is not None:
            yield  # the caller built it, the caller closes it
            return
        app.state.accord = await asyncio.to_thread(make)  # may start the embedded server
        try:
            async with _in_process_worker(app.state.accord):
                yield
        finally:
            await app.state.accord.aclose()  # after the worker stopped: it uses the pool too

    return lifespan


def create_app(
    accord: Accord | None = None,
    *,
    settings: Settings | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    **build_options: Any,
) -> FastAPI:
    """The HTTP API over ``accord`` (or over one built from ``settings`` at start-up)."""
    settings = accord.settings if accord is not None else settings or Settings()
    app = FastAPI(
        title="accord",
        version=_version(),
        lifespan=_lifespan(accord, lambda: build(settings, **build_options)),
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.accord = accord
    app.state.metrics = Metrics()
    problems.install(app)
    for module in ROUTERS:
        app.include_router(module.router)
    app.include_router(routes_invitations.router)
    app.include_router(routes_invitations.public)
    app.mount("/scim/v2", create_scim_app(app))  # its own error format; not in OpenAPI
    app.add_middleware(RequestMiddleware, max_body_bytes=max_body_bytes, metrics=app.state.metrics)
    if settings.throttle.trusted_proxies:  # outermost: the client address is set before all else
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.throttle.trusted_proxies)
    openapi.install(app)
    return app


def app_from_environment() -> FastAPI:
    """The application as ``accord serve`` runs it: settings from ``ACCORD_*``, JSON logs."""
    configure_logging()
    settings = Settings()
    HeaderTimeoutProtocol.configure(settings.serve.header_timeout_seconds)  # this process's
    return create_app(settings=settings)

"""One ASGI middleware around every request: a request id, a body size limit (413), the access
log line and HTTP metrics, and the last line of defence against unexpected exceptions (a 500
problem without details; the traceback goes to the log only)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
from starlette.requests import Request

from accord.entrypoints.api import problems
from accord.entrypoints.api.logs import get_logger
from accord.entrypoints.api.metrics import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

log = get_logger("accord.api")

# Metric labels come from bounded sets, whatever a client sends: a made-up method or path must
# not mint a new series (each costs memory on every scrape, for ever).
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
OTHER = "other"


def metric_labels(scope: Scope) -> tuple[str, str]:
    """The method (a known one, else ``other``) and the route template (else ``other``)."""
    method = scope["method"] if scope["method"] in KNOWN_METHODS else OTHER
    return method, getattr(scope.get("route"), "path", None) or OTHER


class BodyTooLarge(Exception):
    """The request body exceeds the limit."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def request_id_for(scope: Scope) -> str:
    """The client's X-Request-ID if it is sane, else a new one."""
    given = _header(scope, REQUEST_ID_HEADER.encode())
    return given if given and _SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex


async def read_bounded_body(scope: Scope, receive: Receive, limit: int) -> Receive:
    """Read the whole body (at most ``limit`` bytes) and return a receive that replays it."""
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return _replay([message], receive)
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            raise BodyTooLarge
        if not message.get("more_body", False):
            break
    whole = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
    return _replay([whole], receive)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replaying() -> Message:
        return messages.pop(0) if messages else await receive()

    return replaying


class RequestMiddleware:
    """Request id, body limit, access log, metrics and unexpected errors, for one app."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["request_id"] = request_id_for(scope)
        response: dict[str, Any] = {"status": 500, "started": False, "recorded": False}
        started = time.perf_counter()

        def record() -> None:
            if not response["recorded"]:
                response["recorded"] = True
                self._record(scope, state, response["status"], time.perf_counter() - started)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                response.update(status=message["status"], started=True)
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), state["request_id"].encode()))
                message["headers"] = headers
            elif not message.get("more_body", False):
                record()  # before the last byte leaves: a client never outruns its log line
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=state["request_id"]):
            try:
                await self._handle(scope, receive, sending)
            except Exception:
                path = _loggable_path(scope, metric_labels(scope)[1])
                log.error("unhandled exception", path=path, exc_info=True)
                if not response["started"]:
                    await problems.internal_error(Request(scope))(scope, receive, sending)
            finally:
                record()

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            replay = await read_bounded_body(scope, receive, self.max_body_bytes)
        except BodyTooLarge:
            detail = f"The request body must not exceed {self.max_body_bytes} bytes."
            refusal = problems.problem_response(Request(scope), 413, "payload_too_large", detail)
            await refusal(scope, receive, send)
            return
        await self.app(scope, replay, send)

    def _record(self, scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        method, route = metric_labels(scope)
        self.metrics.observe_request(method, route, status, seconds)
        log.info(
            "request",
            method=scope["method"],
            path=_loggable_path(scope, route),
            route=route,
            status=status,
            duration_ms=round(seconds * 1000, 1),
            caller=state.get("caller"),
            operation_id=state.get("operation_id"),
        )


def _loggable_path(scope: Scope, route: str) -> str | None:
    """The request's path, unless a secret is part of it (an invitation link's token): then
    its route's template."""
    return route if "{token}" in route else scope.get("path")

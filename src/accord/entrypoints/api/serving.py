"""How ``accord serve`` speaks HTTP: httptools (uvicorn's fast parser) with a deadline for the
request head.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``) and concurrent connections
(``limit_concurrency``, then 503), but waits for ever for a client that sends half a request
head (slowloris). ``HeaderTimeoutProtocol`` is uvicorn's httptools protocol with a deadline:
from the connection's start, and again from the end of each response on a kept-alive
connection with no request queued behind it, the whole head must arrive within
``header_timeout`` seconds or the connection is closed. A slow body is bounded by the 64 KiB
body limit and the reverse proxy's own timeouts.

httptools rather than h11 (issue 12): it parses requests in C, where h11 parses them in Python
(``bench/p1_create.py`` measures ``cpu_ms_per_create`` on each).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request head is late."""

    # Set from ``serve.header_timeout_seconds`` in each server process before it serves
    # (``configure``): uvicorn builds the protocol itself, with its own arguments only.
    header_timeout: ClassVar[float] = DEFAULT_HEADER_TIMEOUT_SECONDS

    _head_deadline: asyncio.TimerHandle | None = None

    @classmethod
    def configure(cls, header_timeout: float) -> None:
        cls.header_timeout = header_timeout

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def on_headers_complete(self) -> None:
        self._cancel_deadline()  # the head is in: the deadline is met
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        queued = bool(self.pipeline)  # a pipelined request whose head is in runs next
        super().on_response_complete()
        if not queued and not self.transport.is_closing():
            self._await_head()  # the next request on this connection has the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._cancel_deadline()
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_too_late)

    def _cancel_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_late(self) -> None:
        self._head_deadline = None  # armed only while no request head is complete
        if not self.transport.is_closing():
            self.transport.close()

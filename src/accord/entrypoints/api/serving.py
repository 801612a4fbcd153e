"""How ``accord serve`` holds up against slow clients: a deadline for the request head.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``) and concurrent connections
(``limit_concurrency``, then 503), but its h11 protocol waits for ever for a client that sends
half a request head (slowloris). ``HeaderTimeoutProtocol`` is uvicorn's h11 protocol with a
deadline: from the connection's start, and again from the end of each response on a kept-alive
connection, the whole head must arrive within ``header_timeout`` seconds or the connection is
closed. A slow body is bounded by the 64 KiB body limit and the reverse proxy's own timeouts.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head is late."""

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

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is in: the deadline is met
            self._cancel_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
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
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

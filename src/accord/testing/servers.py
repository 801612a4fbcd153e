"""Serve an ASGI app on loopback in a background thread, for tests (real HTTP, real sockets)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import uvicorn

STARTUP_SECONDS = 60.0  # a healthy start takes well under a second; a busy machine, longer


@contextmanager
def serve_in_thread(
    app: Any, *, host: str = "127.0.0.1", lifespan: Literal["on", "off", "auto"] = "off"
) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port; yield its base URL; stop on exit.

    ``lifespan="on"`` runs the app's startup and shutdown (an accord API builds and closes its
    Accord there, on the server's own event loop); a failed startup raises here.
    """
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only then, and
    # without it every loopback request waits ~40 ms for delayed ACKs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            lifespan=lifespan,
            access_log=False,
            proxy_headers=False,
            # Longer than any pause of a test between two requests: with uvicorn's 5 s, a busy
            # machine lets the server close an idle keep-alive connection just as the client
            # reuses it (httpx.ReadError), a race of the test's, not of accord's.
            timeout_keep_alive=120,
        )
    )
    ready = threading.Event()
    original_startup = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        try:
            await original_startup(sockets=sockets)
        finally:
            ready.set()  # also when the lifespan's startup failed: the caller stops waiting

    server.startup = startup  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        if not ready.wait(timeout=STARTUP_SECONDS) or not server.started:
            raise RuntimeError(f"the test server did not start within {STARTUP_SECONDS:.0f} s")
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_SECONDS)
        sock.close()

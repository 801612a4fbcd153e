"""How long the tests wait, in one place: healthy calls are patient; only a call a test has
scripted to hang is given a short timeout, per request, so a loaded machine slows the suite
down but never fails it.

``Hurried`` wraps an httpx transport: ``hurry(method, path)`` makes the next matching request
carry ``IMPATIENCE`` as its timeout (httpx reads a request's timeout from its extensions), and
every other request keeps the client's own, ``PATIENCE``. The emulator's hang (``HANG``) is far
longer than ``IMPATIENCE``, so the hurried request times out for real, through the adapter's
own timeout path, without a race between the two.
"""

from __future__ import annotations

import re

import httpx

PATIENCE = 60.0  # seconds a call meant to succeed may take on a busy machine
IMPATIENCE = 0.3  # the timeout of the one request a test wants to time out
HANG = 3.0  # how long an emulator scripted to hang holds its answer (>> IMPATIENCE)


class Hurried(httpx.AsyncBaseTransport):
    """A transport whose requests are patient except those ``hurry`` names."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._armed: list[tuple[str, re.Pattern[str]]] = []

    def hurry(self, method: str, path: str) -> None:
        """Give the next ``method`` request whose URL path matches ``path`` (a regex) a short
        timeout."""
        self._armed.append((method.upper(), re.compile(path)))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for index, (method, path) in enumerate(self._armed):
            if request.method == method and path.fullmatch(request.url.path):
                del self._armed[index]
                timeout = httpx.Timeout(IMPATIENCE).as_dict()
                request.extensions = {**request.extensions, "timeout": timeout}
                break
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()

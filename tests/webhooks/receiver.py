"""A real webhook receiver on loopback that misbehaves on purpose, and verifies every request
with the ``standardwebhooks`` library unchanged (what a consumer would run).

Per request, by a hash of ``(webhook-id, how many times this id came)``: about 30 % answer 500;
the first ``throttle`` requests answer 429 with ``Retry-After``; paths in ``gone`` answer 410;
``down()`` stops listening (connection refused) until ``up()``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    path: str
    webhook_id: str
    answered: int
    verified: bool
    body: dict[str, Any] | None


@dataclass
class Receiver:
    secrets: dict[str, str] = field(default_factory=dict)  # path → its endpoint's secret
    throttle: int = 0
    retry_after: int = 120
    gone: set[str] = field(default_factory=set)
    failure_percent: int = 30
    log: list[Received] = field(default_factory=list)
    _seen: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status, headers = receiver.answer(self.path, dict(self.headers), body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        try:
            parsed = Webhook(self.secrets[path]).verify(body, headers)
            verified = True
        except (KeyError, WebhookVerificationError):
            parsed, verified = None, False
        message_id = {k.lower(): v for k, v in headers.items()}.get("webhook-id", "")
        with self._lock:
            self._seen[message_id] += 1
            nth = self._seen[message_id]
            status, extra = self._decide(path, message_id, nth, verified)
            self.log.append(Received(path, message_id, status, verified, parsed))
        return status, extra

    def _decide(
        self, path: str, message_id: str, nth: int, verified: bool
    ) -> tuple[int, dict[str, str]]:
        if not verified:
            return 400, {}
        if path in self.gone:
            return 410, {}
        if self.throttle > 0:
            self.throttle -= 1
            return 429, {"retry-after": str(self.retry_after)}
        roll = hashlib.sha256(f"{message_id}:{nth}".encode()).digest()[0] * 100 // 256
        if roll < self.failure_percent:
            return 500, {}
        return 204, {}

    def succeeded(self, path: str = "/") -> set[str]:
        return {r.webhook_id for r in self.log if r.path == path and 200 <= r.answered < 300}

    def bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.log if r.body is not None]

    def verified_all(self) -> bool:
        return all(r.verified for r in self.log)

    @staticmethod
    def dumps(value: Any) -> str:
        return json.dumps(value)

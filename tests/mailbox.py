"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives and can go down;
and a way to let time pass for the worker without sleeping."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message

from aiosmtpd.controller import Controller
from sqlalchemy import text

from accord.adapters.mail.smtp import SmtpMailer
from accord.bootstrap import Accord
from accord.config import SmtpSettings
from tests.patience import PATIENCE


@dataclass
class Inbox:
    """What the server received; ``peers`` names each message's connection (its client's
    address and port). The server drops the connection, without an answer, at the RCPT
    commands whose ordinals (1 for the first it receives) ``hang_up_at`` lists."""

    messages: list[Message] = field(default_factory=list)
    peers: list[object] = field(default_factory=list)
    hang_up_at: set[int] = field(default_factory=set)
    rcpts: int = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        self.rcpts += 1
        if self.rcpts in self.hang_up_at:
            server.transport.close()
            return "421 closing"  # never reaches the client: the connection is gone
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.peers.append(session.peer)
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SmtpServer:
    inbox: Inbox
    port: int
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def mailer(self) -> SmtpMailer:
        return SmtpMailer(SmtpSettings(host="127.0.0.1", port=self.port, timeout_seconds=PATIENCE))


async def make_everything_due(accord: Accord) -> None:
    """Let time pass: every backoff and lease ends now (instead of sleeping until it does)."""
    async with accord.db.transaction() as conn:
        await conn.execute(
            text(
                "UPDATE operations SET next_attempt_at = now(), lease_until = NULL "
                "WHERE state = 'open'"
            )
        )
        await conn.execute(text("UPDATE outbox SET next_attempt_at = now() WHERE sent_at IS NULL"))

"""Sending mail over SMTP with aiosmtplib: one connection per delivery pass (a session), not
one per message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.text import MIMEText
from email.utils import formataddr, parseaddr

import aiosmtplib

from accord.config import SmtpSettings
from accord.domain.errors import MailUnavailable

# The server hung up on a connection this session had used (its idle timeout, a restart, a
# "421 closing channel"): worth one new connection before the message counts as failed.
_DROPPED = (aiosmtplib.SMTPServerDisconnected, ConnectionResetError, BrokenPipeError)
_CLOSING_CHANNEL = 421


def build_message(sender: str, recipient: str, subject: str, body: str) -> Message:
    """The message, built with the stdlib's compat32 classes: the default policy's
    ``EmailMessage`` parses every header it is given, most of the CPU of a mail.

    Raises ValueError for a recipient or subject with a line break: it must never add headers.
    """
    for name, value in (("recipient", recipient), ("subject", subject)):
        if "\r" in value or "\n" in value:
            raise ValueError(f"The {name} of a mail may not contain a line break.")
    if not recipient.isascii():
        # An internationalized address travels as UTF-8 (SMTPUTF8, RFC 6532); only the
        # modern policy writes such a header, compat32 would make it an encoded word.
        modern = EmailMessage()
        modern["From"], modern["To"], modern["Subject"] = sender, recipient, subject
        modern.set_content(body)
        return modern
    message = MIMEText(body)  # us-ascii (7bit) if it can be, else utf-8 (base64)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")
    return message


def _from_header(sender: str) -> str:
    """The From header of ``sender`` (``"Name <address>"``), its name encoded if not ASCII."""
    if sender.isascii():
        return sender
    return formataddr(parseaddr(sender), charset="utf-8")


class SmtpMailer:
    """Sends mail over SMTP; raises MailUnavailable on any SMTP or network failure."""

    transport = "smtp"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.envelope_sender = parseaddr(settings.sender)[1] or settings.sender
        self.from_header = _from_header(settings.sender)

    def client(self) -> aiosmtplib.SMTP:
        """A client for the configured server, not yet connected."""
        password = self.settings.password.get_secret_value() if self.settings.password else None
        return aiosmtplib.SMTP(
            hostname=self.settings.host or "localhost",
            port=self.settings.port,
            username=self.settings.username,
            password=password,
            use_tls=self.settings.use_tls,
            start_tls=self.settings.start_tls or None,
            timeout=self.settings.timeout_seconds,
        )

    async def check(self) -> str:
        """Connect and say hello (nothing is sent); a sentence for ``accord doctor``."""
        where = f"{self.settings.host}:{self.settings.port}"
        client = self.client()
        try:
            await client.connect()
            await client.quit()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailUnavailable(
                f"SMTP server {where} does not answer: {type(exc).__name__}"
            ) from None
        return f"SMTP server {where} answers"

    async def send(self, recipient: str, subject: str, body: str) -> None:
        async with self.session() as session:
            await session.send(recipient, subject, body)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[SmtpSession]:
        session = SmtpSession(self)
        try:
            yield session
        finally:
            await session.hang_up()


class SmtpSession:
    """One SMTP connection for several messages, opened at the first send; a message that
    fails is that message's failure only (the next one gets a new connection if need be).
    Once a connection could not be opened, the session's other messages fail at once: a
    server that does not answer would otherwise cost a timeout per message of the pass."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self.mailer = mailer
        self.connection: aiosmtplib.SMTP | None = None
        self.unreachable: str | None = None  # why the server could not be reached

    async def send(self, recipient: str, subject: str, body: str) -> None:
        message = build_message(self.mailer.from_header, recipient, subject, body)
        reused = self.connection is not None
        try:
            await self._send(recipient, message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            if not (reused and _dropped(exc)):
                raise self._unavailable(exc) from None
            self._close()
            try:  # once more, on a new connection
                await self._send(recipient, message)
            except (aiosmtplib.SMTPException, OSError) as again:
                raise self._unavailable(again) from None

    async def _send(self, recipient: str, message: Message) -> None:
        connection = self.connection or await self._connect()
        sender = self.mailer.envelope_sender
        await connection.send_message(message, sender=sender, recipients=[recipient])

    async def _connect(self) -> aiosmtplib.SMTP:
        if self.unreachable is not None:
            raise MailUnavailable(self.unreachable)
        connection = self.mailer.client()
        try:
            await connection.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            connection.close()
            self.unreachable = str(self._unavailable(exc))
            raise MailUnavailable(self.unreachable) from None
        self.connection = connection
        return connection

    def _unavailable(self, exc: BaseException) -> MailUnavailable:
        if not _refused(exc) or (self.connection and not self.connection.is_connected):
            self._close()  # in an unknown state (a timeout, say): the next message starts afresh
        where = f"{self.mailer.settings.host}:{self.mailer.settings.port}"
        return MailUnavailable(f"Mail to {where} failed: {type(exc).__name__}")

    def _close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    async def hang_up(self) -> None:
        """QUIT, politely; a server that is gone already is no failure of the pass."""
        if self.connection is None:
            return
        with suppress(aiosmtplib.SMTPException, OSError):
            await self.connection.quit()
        self._close()


def _refused(exc: BaseException) -> bool:
    """The server answered "no" to this message and the envelope was reset (aiosmtplib sends
    RSET): the connection is still good for the next one."""
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code != _CLOSING_CHANNEL
    return isinstance(exc, aiosmtplib.SMTPRecipientsRefused)


def _dropped(exc: BaseException) -> bool:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code == _CLOSING_CHANNEL
    return isinstance(exc, _DROPPED)

"""Sending mail over SMTP with aiosmtplib."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from accord.config import SmtpSettings
from accord.domain.errors import MailUnavailable


class SmtpMailer:
    """Sends one message per call; raises MailUnavailable on any SMTP or network failure."""

    transport = "smtp"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    async def check(self) -> str:
        """Connect and say hello (nothing is sent); a sentence for ``accord doctor``."""
        where = f"{self.settings.host}:{self.settings.port}"
        password = self.settings.password.get_secret_value() if self.settings.password else None
        client = aiosmtplib.SMTP(
            hostname=self.settings.host or "localhost",
            port=self.settings.port,
            username=self.settings.username,
            password=password,
            use_tls=self.settings.use_tls,
            start_tls=self.settings.start_tls or None,
            timeout=self.settings.timeout_seconds,
        )
        try:
            await client.connect()
            await client.quit()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailUnavailable(
                f"SMTP server {where} does not answer: {type(exc).__name__}"
            ) from None
        return f"SMTP server {where} answers"

    async def send(self, recipient: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = recipient
        message["Subject"] = subject
        message.set_content(body)
        password = self.settings.password.get_secret_value() if self.settings.password else None
        try:
            await aiosmtplib.send(
                message,
                hostname=self.settings.host or "localhost",
                port=self.settings.port,
                username=self.settings.username,
                password=password,
                use_tls=self.settings.use_tls,
                start_tls=self.settings.start_tls or None,
                timeout=self.settings.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailUnavailable(
                f"Mail to {self.settings.host}:{self.settings.port} failed: {type(exc).__name__}"
            ) from None

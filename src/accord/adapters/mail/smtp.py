"""Sending mail over SMTP with aiosmtplib."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from accord.config import SmtpSettings
from accord.domain.errors import MailUnavailable


class SmtpMailer:
    """Sends one message per call; raises MailUnavailable on any SMTP or network failure."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

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
                hostname=self.settings.host,
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

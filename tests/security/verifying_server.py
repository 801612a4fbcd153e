"""A module's own accord for the security tests: one database, the local identity provider, the
settings' defaults (so ``registration.verify_email`` is on, as in production), a real API
server on loopback and a real SMTP server whose inbox the tests read.

A test module names the fixtures it uses at its top level (``settings, http = (
verifying_server.settings, verifying_server.http)``): pytest finds fixtures in a module's
namespace. (No conftest.py: other findings' tests share this package.)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from accord.adapters.sealing import new_key_text
from accord.bootstrap import Accord
from accord.config import Settings, ThrottleSettings
from accord.entrypoints.api import create_app
from accord.services import worker
from accord.testing.servers import serve_in_thread
from tests.conftest import fresh_database
from tests.mailbox import Inbox, SmtpServer, free_port

PASSWORD = "a good long password"
LINK_TOKEN = re.compile(r"#token=([A-Za-z0-9_-]+)")


RELAXED_THROTTLE = ThrottleSettings(
    login_failures_per_account_and_address="10000/minute",
    login_failures_per_account="10000/minute",
    login_failures_per_address="10000/minute",
    public_requests_per_address="10000/minute",
)


@pytest.fixture(scope="module")
def settings(
    server_url: str, template_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """This module's database; every other setting but the throttle (``registration`` included) its
    default."""
    database = fresh_database(server_url, template_name)
    url = next(database)
    try:
        yield Settings(
            database_url=url,
            data_dir=tmp_path_factory.mktemp("accord"),
            secret_key=new_key_text(),
            idp="local",
            serve_worker=False,  # the tests run the worker when they want the mail
            # One client address (loopback) sends every request of the module: raised limits
            # (tests/security/test_throttling.py tests the defaults).
            throttle=RELAXED_THROTTLE,
        )
    finally:
        database.close()


@pytest.fixture(scope="module")
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a real API server on this module's database."""
    with serve_in_thread(create_app(settings=settings), lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            yield client


@pytest.fixture(scope="module")
def smtp_module() -> Iterator[SmtpServer]:
    server = SmtpServer(Inbox(), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def deliver(accord: Accord, smtp: SmtpServer) -> None:
    """Let the worker send what the outbox holds."""
    await worker.run_until_idle(accord, smtp.mailer())


def mail_to(smtp: SmtpServer, address: str) -> list[str]:
    """The texts of the mails ``address`` received."""
    return [m.get_content() for m in smtp.inbox.to(address)]


def link_token(text: str) -> str:
    """The token of the one link in a mail."""
    (token,) = LINK_TOKEN.findall(text)
    return token


async def at_once(count: int, call: Any) -> list[httpx.Response]:
    """``call(i)`` for i in 0..count-1, all in flight together."""
    return list(await asyncio.gather(*(call(i) for i in range(count))))


async def signs_in(http: httpx.AsyncClient, email: str, password: str) -> bool:
    """Whether the local IdP's sign-in accepts ``password`` for ``email``."""
    response = await http.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code in (200, 401, 403), response.text
    return response.status_code == 200

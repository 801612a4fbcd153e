"""HTTP API tests: a real uvicorn server on loopback, in a thread.

Each test module gets one migrated database and one server per identity provider (a database
and a server per test cost more than most of these tests): tests in a module keep apart by
working in organizations and with e-mail addresses of their own (``Tokens.email``). A test
that needs special wiring (hooks, a broken provider) starts its own server with ``serve``.

A server builds its own Accord in its lifespan (on the server's event loop) and closes it
there; the tests prepare data through the ``accord`` fixture, on the test's loop, so no database
connection ever crosses event loops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import structlog

from accord.adapters.sealing import new_key_text
from accord.bootstrap import Accord
from accord.config import RegistrationSettings, Settings, ThrottleSettings
from accord.domain.callers import Caller
from accord.entrypoints.api import create_app
from accord.entrypoints.api.logs import configure_structlog
from accord.services import organizations, tokens
from accord.testing import FakeIdentityProvider
from accord.testing.servers import serve_in_thread
from tests.conftest import fresh_database

PLATFORM = Caller.platform("test-setup", "setup@platform.test")


RELAXED_THROTTLE = ThrottleSettings(
    login_failures_per_account_and_address="10000/minute",
    login_failures_per_account="10000/minute",
    login_failures_per_address="10000/minute",
    public_requests_per_address="10000/minute",
)


@pytest.fixture(scope="session", autouse=True)
def json_logs() -> Iterator[None]:
    """The API's JSON log lines go to ``logging``, where pytest captures them (caplog)."""
    configure_structlog()
    yield
    structlog.reset_defaults()


ServeFactory = Callable[..., AbstractContextManager[str]]


@pytest.fixture(scope="module")
def settings(
    server_url: str, template_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """This module's database (overrides the per-test one; ``accord`` builds on it)."""
    database = fresh_database(server_url, template_name)
    url = next(database)
    try:
        yield Settings(
            database_url=url,
            data_dir=tmp_path_factory.mktemp("accord"),
            secret_key=new_key_text(),
            idp="local",
            serve_worker=False,  # the API tests decide when operations move on
            # Registration at once, as before e-mail verification (tests/security tests it).
            registration=RegistrationSettings(verify_email=False),
            # One client address (loopback) sends every request of the module: raised limits
            # (tests/security/test_throttling.py tests the defaults).
            throttle=RELAXED_THROTTLE,
        )
    finally:
        database.close()  # drops it


@pytest.fixture(scope="module")
def serve(settings: Settings) -> ServeFactory:
    """``serve(**build_options)``: an API server on this module's database (``idp=fake``)."""

    def start(**build_options: Any) -> AbstractContextManager[str]:
        return serve_in_thread(create_app(settings=settings, **build_options), lifespan="on")

    return start


@pytest.fixture(scope="module")
def fake() -> FakeIdentityProvider:
    """The scripted identity provider behind ``client``."""
    return FakeIdentityProvider()


@pytest.fixture(autouse=True)
def no_leftover_faults(fake: FakeIdentityProvider) -> Iterator[None]:
    """A fault one test scripts and does not use must not hit the next test."""
    yield
    fake.clear_script()


@pytest.fixture(scope="module")
async def client(serve: ServeFactory, fake: FakeIdentityProvider) -> AsyncIterator[Any]:
    """A client of the API over the fake identity provider (fast; scriptable faults)."""
    with serve(idp=fake) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield http


@pytest.fixture(scope="module")
async def local_client(serve: ServeFactory) -> AsyncIterator[Any]:
    """A client of the API over the local identity provider (passwords, sign-in)."""
    with serve() as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield http


@dataclass
class Tokens:
    """Organizations A and B of one test, a token for each, and a platform token."""

    platform: str
    org_a: str
    org_b: str
    a: UUID
    b: UUID
    tag: str

    def email(self, name: str = "ada") -> str:
        """An address of this test's own."""
        return f"{name}-{self.tag}@example.com"


async def new_org(accord: Accord, name: str, max_users: int = 10) -> UUID:
    org = await organizations.create_organization(
        accord, organizations.NewOrganization(name=name, max_users=max_users), caller=PLATFORM
    )
    return UUID(org["id"])


@pytest.fixture
async def creds(accord: Accord) -> Tokens:
    """Two organizations of this test's own, A and B, a token for each, and a platform token."""
    tag = uuid4().hex[:10]
    a, b = await new_org(accord, f"Org A {tag}"), await new_org(accord, f"Org B {tag}")
    platform, _ = await tokens.create_token(accord, name="platform")
    token_a, _ = await tokens.create_token(accord, name="org a", organization_id=a)
    token_b, _ = await tokens.create_token(accord, name="org b", organization_id=b)
    return Tokens(platform, token_a, token_b, a, b, tag)


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert ``response`` is a problem document with this status and code; return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["type"] == f"urn:accord:problem:{code}"
    assert body["title"] and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body

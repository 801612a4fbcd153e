"""The test harness: real PostgreSQL, one migrated template, a fresh copy per test.

``ACCORD_TEST_DATABASE_URL`` names a server to use (CI: the machine's, at 127.0.0.1:5432);
without it the tests start the embedded server in a temporary directory. The template is
migrated once per schema version (its name carries a hash of the migrations) and each test that
asks for ``database_url`` gets its own database copied from it, so tests may commit, race and run
in parallel without seeing each other.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from accord.adapters.db import migrate
from accord.adapters.db.embedded import start_embedded
from accord.adapters.db.engine import sync_engine
from accord.adapters.sealing import new_key_text
from accord.bootstrap import Accord, build
from accord.config import Settings
from tests.mailbox import Inbox, SmtpServer, free_port

TEMPLATE_LOCK_KEY = 0x61636374_706C6174  # "acctplat": one template builder at a time


def _schema_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(migrate.MIGRATIONS.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@pytest.fixture(scope="session")
def server_url() -> str:
    """A URL of the server's maintenance database (``postgres``)."""
    configured = os.environ.get("ACCORD_TEST_DATABASE_URL")
    if configured:
        return configured
    data_dir = Path(tempfile.gettempdir()) / "accord-tests"
    return make_url(start_embedded(data_dir)).set(database="postgres").render_as_string(False)


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _admin(server_url: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
    engine = sync_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def template_name(server_url: str) -> str:
    """A migrated template database, built once per schema version."""
    name = f"accord_template_{_schema_hash()}"
    engine = sync_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": TEMPLATE_LOCK_KEY})
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n AND datistemplate"), {"n": name}
            ).first()
            if not exists:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
                migrate.upgrade(_with_database(server_url, name))
                conn.execute(text(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true'))
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": TEMPLATE_LOCK_KEY})
    finally:
        engine.dispose()
    return name


def fresh_database(server_url: str, template: str | None) -> Iterator[str]:
    """A new database (copied from ``template`` if given), dropped afterwards."""
    name = f"accord_test_{uuid.uuid4().hex[:16]}"
    source = f' TEMPLATE "{template}"' if template else ""
    _admin(server_url, f'CREATE DATABASE "{name}"{source}')
    try:
        yield _with_database(server_url, name)
    finally:
        _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(server_url: str, template_name: str) -> Iterator[str]:
    """A migrated database of this test's own."""
    yield from fresh_database(server_url, template_name)


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    """An empty database of this test's own."""
    yield from fresh_database(server_url, None)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        database_url=database_url, data_dir=tmp_path, secret_key=new_key_text(), idp="local"
    )


@pytest.fixture
async def accord(settings: Settings) -> AsyncIterator[Accord]:
    """accord on this test's database with the local IdP."""
    instance = build(settings)
    try:
        yield instance
    finally:
        await instance.aclose()


@pytest.fixture
def fake_idp():
    from accord.testing import FakeIdentityProvider

    return FakeIdentityProvider()


@pytest.fixture
async def accord_fake(settings: Settings, fake_idp) -> AsyncIterator[Accord]:
    """accord on this test's database with the in-memory fake IdP."""
    instance = build(settings, idp=fake_idp)
    try:
        yield instance
    finally:
        await instance.aclose()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback; ``smtp.stop()``/``start()`` simulate an outage."""
    server = SmtpServer(Inbox(), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()

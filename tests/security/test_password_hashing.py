"""Passwords people choose are stored as argon2id at OWASP's configuration, hashing cannot
crowd out the rest of the service, and hashes from older parameters are upgraded at login."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator

import pytest
from argon2 import PasswordHasher
from argon2.profiles import RFC_9106_LOW_MEMORY
from sqlalchemy import select, update

import accord.adapters.idp.local as local
from accord.adapters.db.database import Database
from accord.adapters.db.engine import async_engine
from accord.adapters.db.tables import local_credentials
from accord.adapters.idp.local import LocalProvider
from accord.domain.ports import NewRemoteUser

PASSWORD = "correct horse battery"


@pytest.fixture
async def idp(database_url: str) -> AsyncIterator[LocalProvider]:
    db = Database(async_engine(database_url, pool_size=4))
    try:
        yield LocalProvider(db)
    finally:
        await db.dispose()


async def new_identity(idp: LocalProvider) -> str:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    made = await idp.create(NewRemoteUser(uuid.uuid4(), email, "Ada Lovelace", PASSWORD))
    return made.remote_id


async def stored_hash(idp: LocalProvider, remote_id: str) -> str:
    async with idp._db.transaction() as conn:  # the test reads what the IdP keeps
        found = await conn.execute(
            select(local_credentials.c.secret_hash).where(
                local_credentials.c.identity_id == remote_id
            )
        )
        return str(found.scalar_one())


async def test_a_chosen_password_is_argon2id_at_owasps_parameters(idp: LocalProvider) -> None:
    stored = await stored_hash(idp, await new_identity(idp))
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")  # 19 MiB, 2 passes, 1 lane
    assert PASSWORD not in stored


async def test_an_older_hash_still_signs_in_and_is_upgraded(idp: LocalProvider) -> None:
    remote_id = await new_identity(idp)
    older = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY).hash(PASSWORD)  # 64 MiB, p=4
    async with idp._db.transaction() as conn:
        await conn.execute(
            update(local_credentials)
            .where(local_credentials.c.identity_id == remote_id)
            .values(secret_hash=older)
        )
    email = (await idp.get(remote_id)).email

    assert await idp.verify_password(email, "wrong horse battery") is None
    assert await stored_hash(idp, remote_id) == older  # a wrong password upgrades nothing

    found = await idp.verify_password(email, PASSWORD)
    assert found is not None and found[0].remote_id == remote_id
    upgraded = await stored_hash(idp, remote_id)
    assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await idp.verify_password(email, PASSWORD) is not None


async def test_a_burst_of_hashing_never_takes_more_than_its_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Forty passwords at once are hashed at most HASHING_THREADS at a time, on threads of
    their own (not the event loop's default executor, which other work needs)."""
    busy, most, lock = 0, 0, threading.Lock()
    threads: set[str] = set()
    real = local._hasher

    class Counting:
        def hash(self, password: str) -> str:
            nonlocal busy, most
            with lock:
                busy += 1
                most = max(most, busy)
                threads.add(threading.current_thread().name)
            try:
                return real.hash(password)
            finally:
                with lock:
                    busy -= 1

    monkeypatch.setattr(local, "_hasher", Counting())
    hashes = await asyncio.gather(*(local._hash(f"{PASSWORD} {n}") for n in range(40)))

    assert len(set(hashes)) == 40
    assert 1 <= most <= local.HASHING_THREADS
    assert all(name.startswith("accord-argon2") for name in threads)

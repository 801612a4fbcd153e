"""accord's built-in identity provider: identities and argon2id password hashes in accord's own
PostgreSQL database, in tables of its own (local_identities, local_credentials).

It is an IdP like the others: it commits its own transactions, never the engine's, so the
engine's protocol (no transaction open across an IdP call) is exercised with it too.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row

from accord.adapters.db.database import Database
from accord.adapters.db.direct import Direct, mapping
from accord.adapters.db.sql import json_rows
from accord.adapters.db.tables import local_credentials, local_identities
from accord.domain import secrets
from accord.domain.errors import RemoteConflict, RemoteNotFound, RemoteRejected
from accord.domain.ports import NewRemoteUser, RemoteUser

_T = TypeVar("_T")

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
_SHA256_PREFIX = "sha256$"

# argon2id at the configuration OWASP's Password Storage Cheat Sheet names as its minimum (19 MiB,
# 2 passes, 1 lane). The library's default (64 MiB, 3 passes, 4 lanes) cost ~3x the CPU per
# password on this machine and let a burst of sign-ups starve everything else. A stored hash
# with other parameters still verifies, and is rehashed at the next successful login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

# Hashing runs on threads of its own, at most one per core but one (and at least one): a burst
# of registrations or logins queues here, and the event loop, the default executor and the
# database pool go on serving everything else. Memory stays bounded too (19 MiB a thread).
HASHING_THREADS = max(1, (os.cpu_count() or 2) - 1)
_hashing = ThreadPoolExecutor(max_workers=HASHING_THREADS, thread_name_prefix="accord-argon2")


@functools.cache
def _dummy_hash() -> str:
    """An argon2id hash with the real parameters, of a password nobody has: checked when there
    is no identity, so that an unknown e-mail costs the same time as a wrong password."""
    return _hasher.hash(secrets.new_token())


async def _hashed(work: Callable[..., _T], *args: str | None) -> _T:
    """Run argon2 work (tens of milliseconds of CPU by design) on the hashing threads."""
    return await asyncio.get_running_loop().run_in_executor(_hashing, work, *args)


async def _hash(password: str) -> str:
    return await _hashed(_hasher.hash, password)


def check_password_policy(password: str) -> None:
    """Raise RemoteRejected when ``password`` breaks the local password policy."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise RemoteRejected(
            f"The password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long."
        )


def _remote(row: Row | dict[str, Any]) -> RemoteUser:
    columns = mapping(row)
    return RemoteUser(
        remote_id=columns["id"],
        email=columns["email"],
        full_name=columns["full_name"],
        accord_user_id=columns["accord_user_id"],
        enabled=columns["enabled"],
    )


# The create path's statements, built once and run on psycopg directly (issue 12: ``Direct``).
_BY_EMAIL = Direct(select(local_identities).where(local_identities.c.email == bindparam("w_email")))
# A joined array, not ``IN (...)``: an index lookup per e-mail in every plan (adapters/db/bulk.py).
_BY_EMAILS = text(
    "SELECT i.* FROM unnest(CAST(:emails AS text[])) AS e(email) "
    "JOIN local_identities i ON i.email = e.email"
)
_CREATE = Direct(insert(local_identities).on_conflict_do_nothing().returning(*local_identities.c))
# Set-wise: the identities as one JSON parameter (``json_rows``), in the given order.
_CREATE_MANY = text(
    """
    INSERT INTO local_identities (id, email, full_name, accord_user_id)
    SELECT v.id, v.email, v.full_name, v.accord_user_id
    FROM json_to_recordset(CAST(:rows AS json))
        AS v(id text, email text, full_name text, accord_user_id text)
    ON CONFLICT DO NOTHING
    RETURNING *
    """
)


class LocalProvider:
    """The ``local`` IdP. Remote ids are accord's user ids (caller-chosen)."""

    name = "local"

    def __init__(self, db: Database) -> None:
        self._db = db

    async def find_by_email(self, email: str) -> RemoteUser | None:
        async with self._db.statement() as conn:
            row = await _BY_EMAIL.first(conn, {"w_email": email})
        return _remote(row) if row else None

    async def get(self, remote_id: str) -> RemoteUser:
        async with self._db.transaction() as conn:
            row = (
                await conn.execute(
                    select(local_identities).where(local_identities.c.id == remote_id)
                )
            ).first()
        if row is None:
            raise RemoteNotFound(f"No local identity {remote_id}.")
        return _remote(row)

    async def create(self, user: NewRemoteUser) -> RemoteUser:
        secret_hash = None
        if user.password is not None:
            check_password_policy(user.password)
            secret_hash = await _hash(user.password)  # before the transaction, not inside it
        # The identity alone is one statement; with its secret, two in one transaction.
        unit = self._db.statement() if secret_hash is None else self._db.transaction()
        async with unit as conn:
            values = {
                "id": str(user.user_id),
                "email": user.email,
                "full_name": user.full_name,
                "accord_user_id": str(user.user_id),
            }
            row = await _CREATE.first(conn, values)
            if row is None:
                raise RemoteConflict(f"A local identity for {user.email} exists already.")
            if secret_hash is not None:
                await self._store_secret(conn, row["id"], secret_hash, None)
        return _remote(row)

    async def existing(self, emails: Sequence[str]) -> set[str]:
        if not emails:
            return set()
        query = select(local_identities.c.email).where(local_identities.c.email.in_(emails))
        async with self._db.transaction() as conn:
            return set((await conn.execute(query)).scalars())

    async def find_many(self, emails: Sequence[str]) -> list[RemoteUser]:
        if not emails:
            return []
        async with self._db.transaction() as conn:
            rows = await conn.execute(_BY_EMAILS, {"emails": list(emails)})
            return [_remote(row) for row in rows]

    async def create_many(self, users: Sequence[NewRemoteUser]) -> list[RemoteUser]:
        """Every identity in one insert; those whose id or e-mail is taken are left out."""
        if not users:
            return []
        if any(u.password is not None for u in users):
            raise ValueError("create_many creates identities without passwords only")
        rows = json_rows(
            {
                "id": str(u.user_id),
                "email": u.email,
                "full_name": u.full_name,
                "accord_user_id": str(u.user_id),
            }
            for u in sorted(users, key=lambda u: u.email)  # one lock order for every writer
        )
        async with self._db.transaction() as conn:  # the batch as one parameter
            return [_remote(row) for row in await conn.execute(_CREATE_MANY, {"rows": rows})]

    async def update(
        self,
        remote_id: str,
        *,
        email: str | None = None,
        full_name: str | None = None,
        password: str | None = None,
    ) -> RemoteUser:
        secret_hash = None
        if password is not None:
            check_password_policy(password)
            secret_hash = await _hash(password)
        changes = {
            k: v for k, v in {"email": email, "full_name": full_name}.items() if v is not None
        }
        async with self._db.transaction() as conn:
            row = (
                await conn.execute(
                    update(local_identities)
                    .where(local_identities.c.id == remote_id)
                    .values(updated_at=func.now(), **changes)
                    .returning(*local_identities.c)
                )
            ).first()
            if row is None:
                raise RemoteNotFound(f"No local identity {remote_id}.")
            if secret_hash is not None:
                await self._store_secret(conn, remote_id, secret_hash, None)
        return _remote(row)

    async def delete(self, remote_id: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(delete(local_identities).where(local_identities.c.id == remote_id))

    async def set_enabled(self, remote_id: str, enabled: bool) -> RemoteUser:
        """Refusing sign-in also ends the identity's sessions: login tokens issued until now
        stop working (``session_allowed``), and stay invalid after a reactivation."""
        changes: dict[str, object] = {"enabled": enabled}
        if not enabled:
            changes["sessions_revoked_at"] = func.now()
        async with self._db.transaction() as conn:
            row = (
                await conn.execute(
                    update(local_identities)
                    .where(local_identities.c.id == remote_id)
                    .values(updated_at=func.now(), **changes)
                    .returning(*local_identities.c)
                )
            ).first()
        if row is None:
            raise RemoteNotFound(f"No local identity {remote_id}.")
        return _remote(row)

    async def iter_users(self, *, page_size: int = 100) -> AsyncIterator[RemoteUser]:
        after = ""
        while True:
            async with self._db.transaction() as conn:
                rows = (
                    await conn.execute(
                        select(local_identities)
                        .where(local_identities.c.id > after)
                        .order_by(local_identities.c.id)
                        .limit(page_size)
                    )
                ).all()
            for row in rows:
                yield _remote(row)
            if len(rows) < page_size:
                return
            after = rows[-1].id

    async def check(self) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(select(1))

    async def aclose(self) -> None:
        return None

    # -- beyond the port: credentials, which only the local IdP keeps --------------------------

    async def set_temporary_password(
        self, remote_id: str, password: str, expires_at: datetime
    ) -> None:
        """Store a generated password (SHA-256: it is high-entropy) that must be replaced."""
        async with self._db.transaction() as conn:
            await self._store_secret(
                conn, remote_id, _SHA256_PREFIX + secrets.digest(password), expires_at
            )

    async def revoke_password(self, remote_id: str) -> None:
        """Remove the identity's credential: no password signs in until one is set again."""
        async with self._db.transaction() as conn:
            found = (
                await conn.execute(
                    update(local_identities)
                    .where(local_identities.c.id == remote_id)
                    .values(updated_at=func.now())
                    .returning(local_identities.c.id)
                )
            ).first()
            if found is None:
                raise RemoteNotFound(f"No local identity {remote_id}.")
            await conn.execute(
                delete(local_credentials).where(local_credentials.c.identity_id == remote_id)
            )

    async def set_password(self, remote_id: str, password: str) -> None:
        """Replace the credential with a password the person chose (argon2id)."""
        await self.update(remote_id, password=password)

    async def verify_password(self, email: str, password: str) -> tuple[RemoteUser, bool] | None:
        """The identity and whether its password is temporary, if ``password`` is right."""
        async with self._db.transaction() as conn:
            row = (
                await conn.execute(
                    select(local_identities, local_credentials)
                    .join(local_credentials)
                    .where(local_identities.c.email == email)
                )
            ).first()
        stored = row.secret_hash if row is not None else None
        if not await _hashed(_matches_or_dummy, stored, password) or row is None:
            return None
        if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
            return None
        if _needs_rehash(row.secret_hash):
            await self._rehash(row.id, row.secret_hash, password)
        return _remote(row), row.is_temporary

    async def _rehash(self, remote_id: str, seen: str, password: str) -> None:
        """Store the password again at today's parameters, unless it changed meanwhile."""
        new_hash = await _hash(password)
        async with self._db.transaction() as conn:
            await conn.execute(
                update(local_credentials)
                .where(
                    local_credentials.c.identity_id == remote_id,
                    local_credentials.c.secret_hash == seen,
                )
                .values(secret_hash=new_hash, updated_at=func.now())
            )

    async def session_allowed(self, remote_id: str, issued_at: datetime) -> bool:
        """Whether a session (login token) issued at ``issued_at`` still holds: the identity
        exists, is enabled, and its sessions were not revoked at or after that time."""
        async with self._db.transaction() as conn:
            row = (
                await conn.execute(
                    select(
                        local_identities.c.enabled, local_identities.c.sessions_revoked_at
                    ).where(local_identities.c.id == remote_id)
                )
            ).first()
        if row is None or not row.enabled:
            return False
        revoked = row.sessions_revoked_at
        return revoked is None or issued_at > revoked

    async def replace_temporary_password(
        self, email: str, temporary: str, new_password: str
    ) -> RemoteUser | None:
        """Swap the temporary password for a chosen one: a compare-and-set on the stored hash,
        so of concurrent swaps exactly one finds the temporary password still there."""
        found = await self._temporary(email, temporary)
        if found is None:
            return None
        identity, seen = found
        check_password_policy(new_password)
        new_hash = await _hash(new_password)  # before the transaction, not inside it
        async with self._db.transaction() as conn:
            swapped = (
                await conn.execute(
                    update(local_credentials)
                    .where(
                        local_credentials.c.identity_id == identity.remote_id,
                        local_credentials.c.secret_hash == seen,
                        local_credentials.c.is_temporary,
                        local_credentials.c.expires_at > func.now(),
                    )
                    .values(
                        secret_hash=new_hash,
                        is_temporary=False,
                        expires_at=None,
                        updated_at=func.now(),
                    )
                    .returning(local_credentials.c.identity_id)
                )
            ).first()
        return identity if swapped else None

    async def _temporary(self, email: str, password: str) -> tuple[RemoteUser, str] | None:
        """The identity and stored hash of ``email``'s live temporary password ``password``."""
        async with self._db.transaction() as conn:
            row = (
                await conn.execute(
                    select(local_identities, local_credentials)
                    .join(local_credentials)
                    .where(local_identities.c.email == email, local_credentials.c.is_temporary)
                )
            ).first()
        if row is None or row.expires_at is None or row.expires_at <= datetime.now(UTC):
            return None
        if not await _hashed(_matches, row.secret_hash, password):
            return None
        return _remote(row), row.secret_hash

    async def _store_secret(self, conn, remote_id: str, secret_hash: str, expires_at) -> None:
        values = {
            "secret_hash": secret_hash,
            "is_temporary": expires_at is not None,
            "expires_at": expires_at,
            "updated_at": func.now(),
        }
        await conn.execute(
            insert(local_credentials)
            .values(identity_id=remote_id, **values)
            .on_conflict_do_update(index_elements=["identity_id"], set_=values)
        )


def _matches_or_dummy(secret_hash: str | None, password: str) -> bool:
    """``_matches``; without a hash, the same work against the dummy one (always False)."""
    if secret_hash is None:
        _matches(_dummy_hash(), password)
        return False
    return _matches(secret_hash, password)


def _needs_rehash(secret_hash: str) -> bool:
    """An argon2 hash made with other parameters than today's (a digest never is one)."""
    if secret_hash.startswith(_SHA256_PREFIX):
        return False
    try:
        return _hasher.check_needs_rehash(secret_hash)
    except InvalidHashError:
        return False


def _matches(secret_hash: str, password: str) -> bool:
    if secret_hash.startswith(_SHA256_PREFIX):
        return secrets.same_digest(password, secret_hash.removeprefix(_SHA256_PREFIX))
    try:
        return _hasher.verify(secret_hash, password)
    except (VerificationError, InvalidHashError):
        return False

"""The skeleton baseline of P1: a bare FastAPI + psycopg create that does accord's round trips
and nothing else (no validation, no sealing, no hashing, no row locks, no logging).

    uv run python bench/skeleton.py --database-url URL --port 8100 [--keycloak URL]

Recounted 7 Dec 2026 at psycopg (every cursor's statement and every ``BEGIN``/``COMMIT``) in
an in-process ``accord``, for ``POST /api/admin/organizations/{id}/users`` with
``credential: invite`` and a platform token, in steady state (after ten creates):

- built-in IdP: 2 transactions and 4 statements of their own (autocommit: no ``BEGIN``, no
  ``COMMIT``), 18 statements in all, no HTTP call;
- Keycloak: the IdP's 2 statements replaced by its HTTP calls, ``GET /users?email=&exact=true``,
  ``POST /users`` (and, once per token lifetime, ``POST .../openid-connect/token``).

In order: the token lookup (a statement); the claim (a transaction of 5: insert the operation,
naming its user, insert the user, an audit event, the organization ``FOR NO KEY UPDATE``, the
seat count); [local IdP: find the identity, insert it: a statement each]; the
operation's progress (a statement); finalize (a transaction of 9: the operation ``FOR UPDATE``
and the organization ``FOR KEY SHARE``, the link, the membership, the user's update returning
the user with its memberships, an audit event, the change-feed event, the outbox mail, the
operation's end); the
work notice (``NOTIFY``, autocommit, one per 10 ms at most: under load one for many creates,
so the skeleton sends none).

The skeleton runs the same number of statements in the same transactions, each a single-row
index lookup or write on its own ``skeleton_*`` tables (its seat "counts" read one row, and it
takes no organization lock: that is the cost the issue wants gone), and the same IdP calls to
the same emulator. It serves on uvicorn's httptools protocol and uvloop, as ``accord serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
import uvicorn
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse

from accord.emulators import keycloak

POOL_SIZE = 20  # accord's default pool: 10 connections, as many again in overflow
TOKEN = "skeleton-token"
TOKEN_DIGEST = hashlib.sha256(TOKEN.encode()).hexdigest()
KEYCLOAK_REALM = keycloak.DEFAULT_REALM
KEYCLOAK_CLIENT = (keycloak.DEFAULT_CLIENT_ID, keycloak.DEFAULT_CLIENT_SECRET)

SCHEMA = """
CREATE TABLE IF NOT EXISTS skeleton_tokens (digest text PRIMARY KEY, scope text NOT NULL);
CREATE TABLE IF NOT EXISTS skeleton_orgs (id uuid PRIMARY KEY, seats int NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS skeleton_ops (id uuid PRIMARY KEY, idem text UNIQUE, org uuid,
    state text, remote_id text);
CREATE TABLE IF NOT EXISTS skeleton_users (id uuid PRIMARY KEY, email text UNIQUE, name text,
    status text);
CREATE TABLE IF NOT EXISTS skeleton_members (user_id uuid PRIMARY KEY, org uuid, role text);
CREATE TABLE IF NOT EXISTS skeleton_links (user_id uuid PRIMARY KEY, remote_id text UNIQUE);
CREATE TABLE IF NOT EXISTS skeleton_audit (id bigserial PRIMARY KEY, action text, subject uuid);
CREATE TABLE IF NOT EXISTS skeleton_outbox (id bigserial PRIMARY KEY, recipient text);
CREATE TABLE IF NOT EXISTS skeleton_identities (id uuid PRIMARY KEY, email text UNIQUE,
    updated_at timestamptz DEFAULT now());
"""


class Pool:
    """The fewest lines that lend a connection to one transaction at a time."""

    def __init__(self, url: str, size: int) -> None:
        self.url, self.size = url, size
        self.idle: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(self.size):
            self.idle.put_nowait(await psycopg.AsyncConnection.connect(self.url))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        conn = await self.idle.get()
        try:
            async with conn.transaction():
                yield conn
        finally:
            self.idle.put_nowait(conn)

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """One statement, a transaction by itself (autocommit), as ``Database.statement``."""
        conn = await self.idle.get()
        try:
            await conn.set_autocommit(True)
            yield conn
        finally:
            await conn.set_autocommit(False)
            self.idle.put_nowait(conn)

    async def close(self) -> None:
        while not self.idle.empty():
            await self.idle.get_nowait().close()


async def prepare(url: str) -> None:
    """The skeleton's tables and its platform token (the harness adds organizations)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(SCHEMA)
        await conn.execute(
            "INSERT INTO skeleton_tokens VALUES (%s, 'platform') ON CONFLICT DO NOTHING",
            (TOKEN_DIGEST,),
        )


class KeycloakCalls:
    """accord's two admin calls per create (an invitation sets no password; the read-back
    that checks the realm keeps accord's attribute is made once per process), with a cached
    client-credentials token."""

    def __init__(self, server_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=server_url.rstrip("/"), timeout=30)
        self.admin = f"/admin/realms/{KEYCLOAK_REALM}"
        self.headers: dict[str, str] = {}

    async def login(self) -> None:
        form = {"grant_type": "client_credentials", "client_id": KEYCLOAK_CLIENT[0]}
        form["client_secret"] = KEYCLOAK_CLIENT[1]
        url = f"/realms/{KEYCLOAK_REALM}/protocol/openid-connect/token"
        token = (await self.http.post(url, data=form)).raise_for_status().json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(
            method, self.admin + path, headers=self.headers, **kwargs
        )
        if response.status_code == 401:  # the token expired: one fresh token, one resend
            await self.login()
            response = await self.http.request(
                method, self.admin + path, headers=self.headers, **kwargs
            )
        return response.raise_for_status()

    async def create(self, email: str, user_id: uuid.UUID) -> str:
        params = {"email": email, "exact": "true", "briefRepresentation": "false"}
        await self.call("GET", "/users", params=params)
        rep = {"username": email, "email": email, "enabled": True, "firstName": "Bench"}
        rep["attributes"] = {"accord_user_id": [str(user_id)]}
        return (await self.call("POST", "/users", json=rep)).headers["location"].split("/")[-1]


async def local_idp(pool: Pool, email: str) -> str:
    """The built-in IdP's two statements."""
    identity = uuid.uuid4()
    async with pool.statement() as c:
        await c.execute("SELECT id FROM skeleton_identities WHERE email = %s", (email,))
    async with pool.statement() as c:
        await c.execute(
            "INSERT INTO skeleton_identities (id, email) VALUES (%s, %s)", (identity, email)
        )
    return str(identity)


async def claim(
    pool: Pool, org: uuid.UUID, email: str, key: str | None
) -> tuple[uuid.UUID, uuid.UUID]:
    """The token lookup and the claim transaction: an operation and a provisioning user."""
    op, user = uuid.uuid4(), uuid.uuid4()
    async with pool.statement() as c:
        await c.execute("SELECT scope FROM skeleton_tokens WHERE digest = %s", (TOKEN_DIGEST,))
    async with pool.transaction() as c:
        await c.execute(
            "INSERT INTO skeleton_ops VALUES (%s, %s, %s, 'open')", (op, key or str(op), org)
        )
        await c.execute(
            "INSERT INTO skeleton_users VALUES (%s, %s, 'Bench', 'provisioning')", (user, email)
        )
        await c.execute(
            "INSERT INTO skeleton_audit (action, subject) VALUES ('claim', %s)", (user,)
        )
        await c.execute("SELECT seats FROM skeleton_orgs WHERE id = %s", (org,))
        await c.execute("SELECT seats FROM skeleton_orgs WHERE id = %s", (org,))
    return op, user


async def finalize(pool: Pool, org: uuid.UUID, op: uuid.UUID, user: uuid.UUID, remote: str) -> None:
    """The progress statement and finalize's nine."""
    async with pool.statement() as c:
        await c.execute("UPDATE skeleton_ops SET remote_id = %s WHERE id = %s", (remote, op))
    async with pool.transaction() as c:
        await c.execute("SELECT state FROM skeleton_ops WHERE id = %s FOR UPDATE", (op,))
        await c.execute("SELECT seats FROM skeleton_orgs WHERE id = %s", (org,))
        await c.execute("INSERT INTO skeleton_links VALUES (%s, %s)", (user, remote))
        await c.execute("INSERT INTO skeleton_members VALUES (%s, %s, 'member')", (user, org))
        await c.execute(
            "UPDATE skeleton_users u SET status = 'pending' WHERE id = %s RETURNING u.email, "
            "(SELECT m.role FROM skeleton_members m WHERE m.user_id = u.id)",
            (user,),
        )
        await c.execute("INSERT INTO skeleton_audit (action, subject) VALUES ('done', %s)", (user,))
        await c.execute("INSERT INTO skeleton_audit (action, subject) VALUES ('feed', %s)", (user,))
        await c.execute("INSERT INTO skeleton_outbox (recipient) VALUES (%s)", (str(user),))
        await c.execute("UPDATE skeleton_ops SET state = 'done' WHERE id = %s", (op,))


def create_app(database_url: str, keycloak_url: str | None = None) -> FastAPI:
    """The skeleton: ``POST /api/admin/organizations/{org}/users`` and ``GET /readyz``."""
    pool = Pool(database_url, POOL_SIZE)
    kc = KeycloakCalls(keycloak_url) if keycloak_url else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await prepare(database_url)
        await pool.open()
        if kc is not None:
            await kc.login()
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/api/admin/organizations/{org}/users", status_code=201)
    async def create(
        org: uuid.UUID, request: Request, idempotency_key: str | None = Header(None)
    ) -> JSONResponse:
        email = (await request.json())["email"].lower()
        op, user = await claim(pool, org, email, idempotency_key)
        remote = await (kc.create(email, user) if kc else local_idp(pool, email))
        await finalize(pool, org, op, user, remote)
        body = {"operation_id": str(op), "user": {"id": str(user), "email": email}}
        return JSONResponse(body, status_code=201)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keycloak", help="Keycloak (emulator) URL; without it, the local IdP")
    args = parser.parse_args()
    app = create_app(args.database_url, args.keycloak)
    # accord serve's stack: httptools, and uvloop where it is installed (loop "auto")
    uvicorn.run(app, host="127.0.0.1", port=args.port, http="httptools", log_level="warning")


if __name__ == "__main__":
    main()

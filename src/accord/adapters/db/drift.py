"""SQL for finding drift: a dedicated session that stages the IdP's users and joins them.

The IdP's listing order cannot be chosen (Auth0 exports in its own order), so the two sides
cannot be merged as they stream. Instead the listing is copied, page by page, into a temporary
table of this session, indexed once, and PostgreSQL joins it with ``users`` and ``idp_links``;
the results come back through server-side cursors. The Python process holds one page of the
listing and one batch of results at a time, whatever the number of users; PostgreSQL keeps the
staged rows on disk when they outgrow its memory.

The session also holds the per-provider advisory lock: one reconcile at a time per provider,
released when the session ends (or its connection dies).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from accord.adapters.db.errors import translated

STAGING = "reconcile_idp_users"
# ``enabled`` is 'true' or 'false': whether the IdP lets the user sign in (suspension).
STAGED_COLUMNS = ("remote_id", "email", "email_key", "accord_user_id", "enabled")
FETCH_ROWS = 1000  # rows per round trip of a server-side cursor
# A cursor's plan is made for its first 10% of rows by default (nested loops over the whole
# listing); every row is read here, so plan for all of them (hash joins), in this transaction.
WHOLE_RESULT_PLANS = text("SELECT set_config('cursor_tuple_fraction', '1', true)")


def lock_key(provider: str) -> int:
    """The advisory lock key of reconciling ``provider`` (a signed 64-bit integer)."""
    digest = hashlib.sha256(f"accord:reconcile:{provider}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PgDriftSession:
    """One connection, held for a whole reconcile: its lock, its staged listing, its joins."""

    def __init__(self, engine: AsyncEngine, provider: str) -> None:
        self._engine = engine
        self.provider = provider
        self._conn: AsyncConnection | None = None

    @property
    def conn(self) -> AsyncConnection:
        assert self._conn is not None, "use the session as an async context manager"
        return self._conn

    async def try_lock(self) -> bool:
        """Take the provider's advisory lock for this session; False if another holds it."""
        async with translated():
            self._conn = await self._engine.connect()
            locked = await self._scalar(
                "SELECT pg_try_advisory_lock(:k)", k=lock_key(self.provider)
            )
        if not locked:
            await self.close()
        return bool(locked)

    async def close(self) -> None:
        """Drop the staged table and the lock; a broken connection is discarded instead."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.rollback()
            await conn.execute(text(f"DROP TABLE IF EXISTS {STAGING}"))
            await conn.execute(text("SELECT pg_advisory_unlock_all()"))
            await conn.commit()
        except Exception:
            await conn.invalidate()  # closing the connection releases both
        finally:
            await conn.close()

    async def _scalar(self, sql: str, **params: Any) -> Any:
        value = (await self.conn.execute(text(sql), params)).scalar()
        await self.conn.commit()
        return value

    # -- staging the IdP's listing -------------------------------------------------------------

    async def create_staging(self) -> None:
        """An empty session-private table for the listing (no index yet: they come after)."""
        columns = ", ".join(f"{name} text" for name in STAGED_COLUMNS)
        async with translated():
            await self.conn.execute(text(f"DROP TABLE IF EXISTS {STAGING}"))
            await self.conn.execute(text(f"CREATE TEMPORARY TABLE {STAGING} ({columns})"))
            await self.conn.commit()

    async def stage(self, rows: Sequence[tuple[str | None, ...]]) -> None:
        """Append rows (``STAGED_COLUMNS`` order) with COPY, the fastest way in."""
        raw = await self.conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        async with translated():
            async with driver.cursor() as cursor:
                statement = f"COPY {STAGING} ({', '.join(STAGED_COLUMNS)}) FROM STDIN"
                async with cursor.copy(statement) as copy:
                    for row in rows:
                        await copy.write_row(row)
            await self.conn.commit()

    async def index_staging(self) -> None:
        """Index the listing once it is complete, and let the planner see its size."""
        async with translated():
            await self.conn.execute(text(f"CREATE INDEX ON {STAGING} (remote_id)"))
            await self.conn.execute(text(f"CREATE INDEX ON {STAGING} (email_key)"))
            await self.conn.execute(text(f"ANALYZE {STAGING}"))
            await self.conn.commit()

    # -- the joins -----------------------------------------------------------------------------

    async def stream(self, sql: str, **params: Any) -> AsyncIterator[RowMapping]:
        """The rows of ``sql`` through a server-side cursor, ``FETCH_ROWS`` at a time."""
        async with translated():
            await self.conn.execute(WHOLE_RESULT_PLANS)
            result = await self.conn.stream(
                text(sql).execution_options(yield_per=FETCH_ROWS), params
            )
            async for row in result.mappings():
                yield row
            await self.conn.commit()

    def rows_with_drift(self) -> AsyncIterator[RowMapping]:
        """User rows that are not plainly healthy, with their link and e-mail matches."""
        return self.stream(ROWS_WITH_DRIFT, provider=self.provider)

    def unlinked_idp_users(self) -> AsyncIterator[RowMapping]:
        """Listed IdP users that no row links to and no live row claims by e-mail."""
        return self.stream(UNLINKED_IDP_USERS, provider=self.provider)

    def stuck_operations(self, grace_seconds: float) -> AsyncIterator[RowMapping]:
        """Open operations past their deadline, or idle with no runner for ``grace_seconds``."""
        return self.stream(STUCK_OPERATIONS, grace=grace_seconds)

    def duplicate_organizations(self) -> AsyncIterator[RowMapping]:
        """Users who own several organizations alone."""
        return self.stream(DUPLICATE_ORGANIZATIONS)

    def unfinished_rows(self, email: str | None) -> AsyncIterator[RowMapping]:
        """Rows never finished (of ``email`` only, if given)."""
        return self.stream(UNFINISHED_ROWS, email=email, provider=self.provider)


DriftSession = PgDriftSession  # the name the tests and older callers know


# Operations that are still running own their user and e-mail: nothing here touches them.
_BUSY = """
busy AS (
    SELECT user_id, coalesce(request->>'email', flow_state->>'email') AS email
    FROM operations WHERE state = 'open'
)"""

ROWS_WITH_DRIFT = f"""
WITH {_BUSY}
SELECT u.id::text AS user_id, u.email, u.status,
       l.remote_id AS link_remote_id, sl.email AS link_email,
       m.remote_id AS match_remote_id, ml.user_id::text AS match_linked_to,
       CAST(sl.enabled AS boolean) AS link_enabled,
       l.created_by_accord AS link_created_by_accord
FROM users u
LEFT JOIN idp_links l ON l.user_id = u.id AND l.provider = :provider
LEFT JOIN {STAGING} sl ON sl.remote_id = l.remote_id
LEFT JOIN LATERAL (
    SELECT s.remote_id FROM {STAGING} s WHERE s.email_key = u.email
    ORDER BY s.remote_id = l.remote_id DESC NULLS LAST, s.remote_id LIMIT 1
) m ON true
LEFT JOIN idp_links ml ON ml.provider = :provider AND ml.remote_id = m.remote_id
WHERE u.status <> 'disabled'
  AND NOT (l.remote_id IS NOT NULL AND sl.email_key IS NOT NULL AND sl.email_key = u.email
           AND ((coalesce(sl.enabled, 'true') = 'true') = (u.status <> 'suspended')
                -- another system's block of an identity it made is its own (G11)
                OR (u.status <> 'suspended' AND NOT l.created_by_accord)))
  AND u.id NOT IN (SELECT user_id FROM busy WHERE user_id IS NOT NULL)
  AND u.email NOT IN (SELECT email FROM busy WHERE email IS NOT NULL)
"""

UNLINKED_IDP_USERS = f"""
WITH {_BUSY},
finished AS (
    SELECT DISTINCT remote_id FROM operations
    WHERE state = 'succeeded' AND kind IN ('create_user', 'register') AND remote_id IS NOT NULL
),
created AS (
    SELECT DISTINCT remote_id FROM operations WHERE created_remote AND remote_id IS NOT NULL
)
SELECT s.remote_id, s.email, s.accord_user_id,
       c.remote_id IS NOT NULL AS created_by_operation,
       f.remote_id IS NOT NULL AS finalized,
       u.status AS row_status,
       (ul.remote_id IS NOT NULL) AS row_linked_elsewhere
FROM {STAGING} s
LEFT JOIN idp_links l ON l.provider = :provider AND l.remote_id = s.remote_id
LEFT JOIN users u ON u.email = s.email_key
LEFT JOIN idp_links ul ON ul.user_id = u.id AND ul.provider = :provider
    AND ul.remote_id <> s.remote_id
    AND EXISTS (SELECT 1 FROM {STAGING} s2 WHERE s2.remote_id = ul.remote_id)
LEFT JOIN finished f ON f.remote_id = s.remote_id
LEFT JOIN created c ON c.remote_id = s.remote_id
WHERE l.remote_id IS NULL
  AND (u.id IS NULL OR u.status = 'disabled'
       OR (u.status <> 'provisioning' AND ul.remote_id IS NOT NULL))
  AND s.email_key NOT IN (SELECT email FROM busy WHERE email IS NOT NULL)
  AND coalesce(s.accord_user_id, '') NOT IN (
      SELECT user_id::text FROM busy WHERE user_id IS NOT NULL)
"""


# -- queries that need no staging (plain connections) -------------------------------------------

STUCK_OPERATIONS = """
SELECT id::text AS id, kind, recovery_point, user_id::text AS user_id, attempts,
       coalesce(request->>'email', flow_state->>'email') AS email,
       deadline_at < now() AS past_deadline
FROM operations
WHERE state = 'open'
  AND (deadline_at < now()
       OR ((lease_until IS NULL OR lease_until < now())
           AND coalesce(next_attempt_at, updated_at) < now() - make_interval(secs => :grace)))
ORDER BY created_at
"""

# A user "owns an organization alone" when they are its only member, or its owner and it has no
# members at all. Personal organizations come first, then the oldest: that is the one to keep.
DUPLICATE_ORGANIZATIONS = """
WITH sole AS (
    SELECT organization_id, min(user_id::text)::uuid AS user_id
    FROM memberships GROUP BY organization_id HAVING count(*) = 1
),
alone AS (
    SELECT o.id, o.slug, o.kind, o.created_at, coalesce(s.user_id, o.owner_user_id) AS user_id
    FROM organizations o LEFT JOIN sole s ON s.organization_id = o.id
    WHERE (s.user_id IS NOT NULL AND coalesce(o.owner_user_id, s.user_id) = s.user_id)
       OR (o.owner_user_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.organization_id = o.id))
)
SELECT u.id::text AS user_id, u.email,
       jsonb_agg(jsonb_build_object('id', a.id, 'slug', a.slug, 'kind', a.kind)
                 ORDER BY a.kind = 'personal' DESC, a.created_at, a.slug) AS organizations
FROM alone a JOIN users u ON u.id = a.user_id
GROUP BY u.id, u.email HAVING count(*) > 1
ORDER BY u.email
"""


# -- doctor: a bounded sample ---------------------------------------------------------------------

SAMPLE_ROWS = """
SELECT u.id::text AS user_id, u.email, u.status, l.remote_id,
       EXISTS (SELECT 1 FROM operations o WHERE o.state = 'open' AND o.user_id = u.id) AS busy
FROM users u
LEFT JOIN idp_links l ON l.user_id = u.id AND l.provider = :provider
WHERE u.status <> 'disabled'
ORDER BY u.created_at DESC
LIMIT :limit
"""

# Of the given IdP users (remote ids, e-mails), which no row links to.
UNLINKED_OF = """
SELECT s.remote_id, s.email_key,
       EXISTS (SELECT 1 FROM users u WHERE u.email = s.email_key AND u.status <> 'disabled')
           AS has_row
FROM unnest(CAST(:remote_ids AS text[]), CAST(:emails AS text[])) AS s(remote_id, email_key)
WHERE NOT EXISTS (
    SELECT 1 FROM idp_links l WHERE l.provider = :provider AND l.remote_id = s.remote_id)
  AND NOT EXISTS (
    SELECT 1 FROM operations o WHERE o.state = 'open' AND o.request->>'email' = s.email_key)
"""

COUNT_STUCK = f"SELECT count(*) FROM ({STUCK_OPERATIONS}) stuck"

# Rows never finished: left in `provisioning` with no operation running, or pending/active but
# never linked to an identity of this provider.
UNFINISHED_ROWS = """
SELECT u.id::text AS user_id, u.email, u.status, u.created_at
FROM users u
WHERE (CAST(:email AS text) IS NULL OR u.email = :email)
  AND (u.status = 'provisioning'
       OR (u.status IN ('pending', 'active') AND NOT EXISTS (
           SELECT 1 FROM idp_links l WHERE l.user_id = u.id AND l.provider = :provider)))
  AND NOT EXISTS (SELECT 1 FROM operations o WHERE o.state = 'open' AND o.user_id = u.id)
ORDER BY u.email
"""


class PgDriftQueries:
    """``DriftQueries`` on PostgreSQL: bounded reads for ``accord doctor``."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def count_stuck(self, grace_seconds: float) -> int:
        return (await self._conn.execute(text(COUNT_STUCK), {"grace": grace_seconds})).scalar_one()

    async def sample_rows(self, provider: str, limit: int) -> list[RowMapping]:
        params = {"provider": provider, "limit": limit}
        return list((await self._conn.execute(text(SAMPLE_ROWS), params)).mappings())

    async def unlinked_of(
        self, provider: str, remote_ids: Sequence[str], emails: Sequence[str]
    ) -> list[RowMapping]:
        params = {"provider": provider, "remote_ids": list(remote_ids), "emails": list(emails)}
        return list((await self._conn.execute(text(UNLINKED_OF), params)).mappings())

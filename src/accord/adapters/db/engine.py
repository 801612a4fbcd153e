"""Engines and URLs: every connection accord makes goes through psycopg 3."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

# A pooled connection back in the pool for longer than this is pinged before it is handed
# out again; one used more recently is not (issue 12: SQLAlchemy's ``pool_pre_ping`` pings on
# every checkout, an extra round trip per transaction, about a quarter of a create's CPU).
# The same trade as HikariCP's ``aliveBypassWindowMs``: a connection that answered a moment ago
# is taken to be alive. If the server went away within that moment, the statement on it fails
# (StorageUnavailable, 503), and SQLAlchemy, seeing a disconnect, invalidates the whole pool:
# the next checkouts connect anew.
PING_IDLE_AFTER_SECONDS = 1.0
_RETURNED_AT = "accord_returned_at"


def _psycopg_url(url: str | URL) -> URL:
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"accord needs a PostgreSQL URL, not {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+psycopg")


def redact(url: str | URL) -> str:
    """The URL with its password hidden, for humans and logs."""
    return make_url(url).render_as_string(hide_password=True)


def async_engine(
    url: str | URL, *, pool_size: int = 10, ping_idle_after: float = PING_IDLE_AFTER_SECONDS
) -> AsyncEngine:
    """The application's engine: asyncio, pooled, idle connections pinged before reuse."""
    engine = create_async_engine(_psycopg_url(url), pool_size=pool_size, max_overflow=pool_size)
    _ping_idle_connections(engine.sync_engine, ping_idle_after)
    return engine


def _ping_idle_connections(engine: Engine, idle_after: float) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def returned(dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def handed_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned_at = record.info.pop(_RETURNED_AT, None)
        if returned_at is None or time.monotonic() - returned_at < idle_after:
            return  # new, or used a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            # As pre-ping does: every pooled connection is suspect; the pool connects anew.
            raise exc.InvalidatePoolError() from error


def sync_engine(url: str | URL) -> Engine:
    """A short-lived synchronous engine, for migrations and administration."""
    return create_engine(_psycopg_url(url), poolclass=NullPool)

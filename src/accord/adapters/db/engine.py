"""Engines and URLs: every connection accord makes goes through psycopg 3."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool


def _psycopg_url(url: str | URL) -> URL:
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"accord needs a PostgreSQL URL, not {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+psycopg")


def redact(url: str | URL) -> str:
    """The URL with its password hidden, for humans and logs."""
    return make_url(url).render_as_string(hide_password=True)


def async_engine(url: str | URL, *, pool_size: int = 10) -> AsyncEngine:
    """The application's engine: asyncio, pooled."""
    return create_async_engine(
        _psycopg_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def sync_engine(url: str | URL) -> Engine:
    """A short-lived synchronous engine, for migrations and administration."""
    return create_engine(_psycopg_url(url), poolclass=NullPool)

"""Alembic environment: runs online only, under an advisory lock so that concurrent starts of
``accord serve`` apply each migration once."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from accord.adapters.db.engine import sync_engine
from accord.adapters.db.tables import metadata

# An arbitrary, fixed key: "accord migrations".
MIGRATION_LOCK_KEY = 0x61636372_6D696772

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # a caller (tests) lends its connection
        _run(connection)
        return
    engine = sync_engine(config.attributes["url"])
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("accord's migrations run online only: use `accord db upgrade`.")
run_migrations_online()

"""``accord db``: the database's migrations and location."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from accord.entrypoints.cli.common import command, err

if TYPE_CHECKING:
    from accord.config import Settings

app = typer.Typer(name="db", help="The database: migrations and location.", no_args_is_help=True)


def describe_database(settings: Settings, url: str) -> str:
    """Where the database is, password hidden: the configured server or the embedded one."""
    from accord.adapters.db.embedded import embedded_pgdata
    from accord.adapters.db.engine import redact

    if settings.database_url is not None:
        return redact(url)
    pgdata = embedded_pgdata(settings.data_dir)
    return f"embedded PostgreSQL in {pgdata} (set ACCORD_DATABASE_URL to use another)"


def migrated_database() -> tuple[Settings, str]:
    """The settings and the database URL in use, after applying the migrations."""
    from accord.adapters.db import migrate
    from accord.bootstrap import resolve_database_url
    from accord.config import Settings

    settings = Settings()
    url = resolve_database_url(settings)
    migrate.upgrade(url)
    return settings, url


@command(app, "upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (safe to run again)."""
    from accord.adapters.db import migrate

    settings, url = migrated_database()
    revision = migrate.current_revision(url)
    err().print(f"database at revision {revision}: {describe_database(settings, url)}")


@command(app, "url")
def db_url() -> None:
    """Print the database URL in use, password hidden (starts the embedded server if needed)."""
    from accord.adapters.db.engine import redact
    from accord.bootstrap import resolve_database_url
    from accord.config import Settings

    settings = Settings()
    url = resolve_database_url(settings)
    print(redact(url))
    if settings.database_url is None:
        err().print(describe_database(settings, url))

"""The embedded PostgreSQL server (pgserver) that accord runs when no database URL is given."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from sqlalchemy.engine import make_url

from accord.domain.errors import ConfigurationError

DATABASE_NAME = "accord"


def embedded_pgdata(data_dir: Path) -> Path:
    """Where the embedded server keeps its files."""
    return data_dir / "postgres"


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded server under ``data_dir``; return a URL of its database.

    The server is shared by every accord process on the machine that uses the same data
    directory and stops when the last of them exits. pgserver runs it as an unprivileged system
    user when accord runs as root, since PostgreSQL refuses to run as root.
    """
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime dir at import; without XDG_RUNTIME_DIR
        # (containers, CI) platformdirs warns and falls back to /tmp, which is what we want.
        warnings.simplefilter("ignore")
        import pgserver  # imported here: loading it costs time and only this path needs it

    pgdata = embedded_pgdata(data_dir)
    try:
        pgdata.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot create the embedded database directory {pgdata}: {exc.strerror}. "
            "Set ACCORD_DATA_DIR to a writable directory, or ACCORD_DATABASE_URL."
        ) from None
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    if not server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';").count(
        "1 row"
    ):
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return (
        make_url(server.get_uri()).set(database=DATABASE_NAME).render_as_string(hide_password=False)
    )

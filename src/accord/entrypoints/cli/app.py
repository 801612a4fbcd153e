"""The ``accord`` command line, assembled from one module per area. Every command: ``--help``;
``--json`` for scripts; exit status 1 and one readable line (or ``{"code", "message"}`` with
``--json``) on failure, never a traceback."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from accord.entrypoints.cli import (
    database,
    drift,
    events,
    invitations,
    mail,
    members,
    organizations,
    scim_groups,
    scim_tokens,
    service,
    tokens,
    users,
    webhooks,
)
from accord.entrypoints.cli.common import err

INTERNAL_ERROR = 2

app = typer.Typer(
    help="accord: user provisioning across PostgreSQL and an identity provider.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: typer's rich help loads rich, pygments and markdown
)
for group in (database.app, organizations.app, users.app, tokens.app, invitations.app):
    app.add_typer(group)
for group in (members.app, mail.app, scim_tokens.app, scim_groups.app, events.app, webhooks.app):
    app.add_typer(group)
for commands in (users.registration_app, service.app, drift.app):
    app.add_typer(commands)  # no name: their commands join the top level


@app.callback()
def settings_from_options(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="ACCORD_DATABASE_URL",
            help="PostgreSQL URL; without it accord runs an embedded server.",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="ACCORD_DATA_DIR",
            file_okay=False,
            help="Where the embedded database and generated keys live.",
        ),
    ] = None,
    idp: Annotated[
        str | None,
        typer.Option(
            "--idp",
            envvar="ACCORD_IDP",
            help="The identity provider: local (default), auth0, supabase or keycloak.",
        ),
    ] = None,
) -> None:
    """Each option stands for its ACCORD_* variable, read by the settings when a command runs
    (and by the processes it starts)."""
    given = {"ACCORD_DATABASE_URL": database_url, "ACCORD_DATA_DIR": data_dir, "ACCORD_IDP": idp}
    os.environ.update({name: str(value) for name, value in given.items() if value is not None})


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except Exception as exc:  # the last line of defence: a bug, reported without a traceback
        if os.environ.get("ACCORD_DEBUG"):
            raise
        err().print(f"[red]internal error[/red]: {type(exc).__name__}. Please report it.")
        sys.exit(INTERNAL_ERROR)

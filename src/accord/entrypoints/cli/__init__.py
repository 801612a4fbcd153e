"""The ``accord`` command line (typer): ``app`` and the console-script entry point ``main``.

One module per area (database, organizations, users, tokens, drift, service), all on common.py;
app.py assembles them. At import they load only typer and the standard library."""

from accord.entrypoints.cli.app import app, main

__all__ = ["app", "main"]

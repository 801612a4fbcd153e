"""The long-running commands: ``serve`` (the HTTP API), ``worker``, ``emulate``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from accord.entrypoints.cli.common import JsonFlag, command, err, out, print_json, run_with_accord

if TYPE_CHECKING:
    from accord.config import Settings

app = typer.Typer()  # commands of the top level


def serve_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options that bound slow and numerous clients (``ACCORD_SERVE__*``)."""
    from accord.entrypoints.api.serving import HeaderTimeoutProtocol

    HeaderTimeoutProtocol.configure(settings.serve.header_timeout_seconds)
    return {
        "http": HeaderTimeoutProtocol,  # each worker process sets its deadline again at start
        "loop": "auto",  # uvloop, a dependency (issue 12); asyncio where it has no build
        "limit_concurrency": settings.serve.limit_concurrency,
        "timeout_keep_alive": settings.serve.timeout_keep_alive_seconds,
        "timeout_worker_healthcheck": settings.serve.worker_healthcheck_seconds,
        # X-Forwarded-For is believed from ``throttle.trusted_proxies`` only, by the app itself.
        "proxy_headers": False,
    }


@command(app, "serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            envvar="ACCORD_SERVE_WORKER",
            help="Run a background worker in each server process.",
        ),
    ] = True,
) -> None:
    """Apply the migrations, then serve the HTTP API (OpenAPI at /docs) and a worker."""
    import uvicorn

    from accord.entrypoints.cli.database import describe_database, migrated_database

    if not worker:  # read by each server process's Settings
        os.environ["ACCORD_SERVE_WORKER"] = "false"

    settings, url = migrated_database()
    err().print(f"accord API on http://{host}:{port} (docs at /docs)")
    err().print(f"database: {describe_database(settings, url)}")
    uvicorn.run(
        "accord.entrypoints.api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # accord writes its own JSON access log
        log_level="warning",
        **serve_options(settings),
    )


@command(app, "worker")
def worker_command(
    once: Annotated[
        bool, typer.Option("--once", help="Work until nothing is due, then exit.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Finish open operations, deliver mail, expire old tokens and keys."""
    from accord.entrypoints import worker as worker_entry

    result = run_with_accord(lambda a: worker_entry.run(a, once=once))
    if result is None:
        return
    summary = {
        "succeeded": result.succeeded,
        "failed": result.failed,
        "postponed": result.postponed,
        "mail_sent": result.mail.sent,
        "mail_failed": result.mail.failed,
    }
    if as_json:
        print_json(summary)
    else:
        out().print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in summary.items()))


# The emulators load Starlette and every vendor's app: ``emulate`` takes its arguments unparsed
# and hands them, --help included, to entrypoints/emulate.py's command once it is asked for.
@app.command(
    "emulate",
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def emulate(ctx: typer.Context) -> None:
    """Serve an emulator of a vendor's admin API, with injectable faults (see /__faults)."""
    from accord.entrypoints.emulate import emulate as emulate_vendor

    emulator = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    emulator.command()(emulate_vendor)
    typer.main.get_command(emulator).main(ctx.args, prog_name=ctx.command_path)

"""The ``accord`` command line. Every command: ``--help``; ``--json`` for scripts; exit status 1
and one readable line (or ``{"code", "message"}`` with ``--json``) on failure, never a traceback."""

from __future__ import annotations

import asyncio
import functools
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from accord.adapters.db import migrate
from accord.adapters.db.embedded import embedded_pgdata
from accord.adapters.db.engine import redact
from accord.bootstrap import Accord, build, resolve_database_url
from accord.config import Settings
from accord.domain.callers import Caller
from accord.domain.errors import AccordError
from accord.domain.model import CredentialMode, RegistrationSource, Role
from accord.entrypoints.cli_drift import register as register_drift_commands
from accord.entrypoints.emulate import emulate
from accord.services import (
    deprovisioning,
    directory,
    organizations,
    provisioning,
    registration,
)

app = typer.Typer(
    help="accord: user provisioning across PostgreSQL and an identity provider.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database: migrations and location.", no_args_is_help=True)
orgs_app = typer.Typer(help="Organizations.", no_args_is_help=True)
users_app = typer.Typer(help="Users.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(orgs_app, name="orgs")
app.add_typer(users_app, name="users")
app.command("emulate")(emulate)
register_drift_commands(app, orgs_app)  # reconcile, cleanup-orphans, import, doctor, orgs merge

err = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console(soft_wrap=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(error: AccordError, as_json: bool) -> None:
    """Report ``error`` as the CLI promises, then exit with status 1."""
    if as_json:
        print(json.dumps({"code": error.code, "message": error.message}))
    else:
        err.print(f"[red]error[/red] ({error.code}): {error.message}", highlight=False)
    raise typer.Exit(1)


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn domain errors (and interrupts) into the CLI's failure contract."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json", False))
        try:
            return fn(*args, **kwargs)
        except AccordError as error:
            fail(error, as_json)
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def run_with_accord(work: Callable[[Accord], Awaitable[Any]]) -> Any:
    """Build accord from the environment, run ``work`` on it, and close it."""

    async def main() -> Any:
        accord = build(Settings())
        try:
            return await work(accord)
        finally:
            await accord.aclose()

    return asyncio.run(main())


def print_json(value: Any) -> None:
    print(json.dumps(value, default=str, indent=2))


def print_table(rows: list[dict[str, Any]], columns: list[str], title: str) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    out.print(table)


def describe_database(settings: Settings, url: str) -> str:
    if settings.database_url is not None:
        return redact(url)
    pgdata = embedded_pgdata(settings.data_dir)
    return f"embedded PostgreSQL in {pgdata} (set ACCORD_DATABASE_URL to use another)"


# -- db ------------------------------------------------------------------------------------------


@db_app.command("upgrade")
@command
def db_upgrade() -> None:
    """Apply the database migrations (safe to run again)."""
    settings = Settings()
    url = resolve_database_url(settings)
    migrate.upgrade(url)
    revision = migrate.current_revision(url)
    err.print(f"database at revision {revision}: {describe_database(settings, url)}")


@db_app.command("url")
@command
def db_url() -> None:
    """Print the database URL in use, password hidden (starts the embedded server if needed)."""
    settings = Settings()
    url = resolve_database_url(settings)
    print(redact(url))
    if settings.database_url is None:
        err.print(describe_database(settings, url))


# -- reads ---------------------------------------------------------------------------------------


@orgs_app.command("list")
@command
def orgs_list(as_json: JsonFlag = False) -> None:
    """List organizations."""
    rows = run_with_accord(directory.list_organizations)
    if as_json:
        print_json(rows)
    else:
        print_table(
            rows, ["id", "slug", "display_name", "kind", "max_users", "members"], "organizations"
        )


@users_app.command("list")
@command
def users_list(
    org: Annotated[
        str | None, typer.Option("--org", help="Only members of this organization.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List users."""
    rows = run_with_accord(lambda accord: directory.list_users(accord, organization_id=org))
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["id", "email", "full_name", "status", "organizations"], "users")


# -- provisioning ------------------------------------------------------------------------------


def cli_caller(acting_user: str | None) -> Caller:
    """The CLI acts with platform scope; the audit trail names the OS user (or --acting-user)."""
    return Caller.platform("cli", acting_user or f"cli:{getpass.getuser()}")


ActingUser = Annotated[
    str | None, typer.Option("--acting-user", help="Who is acting, for the audit trail.")
]
IdempotencyKey = Annotated[
    str | None,
    typer.Option("--idempotency-key", help="Retry-safe key: the same key replays the result."),
]


@orgs_app.command("create")
@command
def orgs_create(
    name: Annotated[
        str, typer.Argument(help="The organization's name (its slug derives from it).")
    ],
    max_users: Annotated[int, typer.Option("--max-users", min=1, help="Member limit.")] = 10,
    display_name: Annotated[str | None, typer.Option("--display-name")] = None,
    plan_type: Annotated[str, typer.Option("--plan-type")] = "trial",
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a team organization."""
    request = organizations.NewOrganization(
        name=name, display_name=display_name, max_users=max_users, plan_type=plan_type
    )
    org = run_with_accord(
        lambda a: organizations.create_organization(a, request, caller=cli_caller(acting_user))
    )
    if as_json:
        print_json(org)
    else:
        out.print(f"created organization {org['slug']} ({org['id']}), up to {max_users} members")


@users_app.command("create")
@command
def users_create(
    email: Annotated[str, typer.Argument(help="The new user's e-mail address.")],
    name: Annotated[str, typer.Option("--name", help="Full name.")],
    org: Annotated[str, typer.Option("--org", help="Organization id.")],
    role: Annotated[Role, typer.Option("--role")] = Role.ORG_USER,
    permission: Annotated[
        list[str] | None, typer.Option("--permission", help="A permission (repeatable).")
    ] = None,
    credential: Annotated[CredentialMode, typer.Option("--credential")] = CredentialMode.INVITE,
    idempotency_key: IdempotencyKey = None,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Create (or adopt) a user in an organization."""
    request = provisioning.NewUser(
        email=email,
        full_name=name,
        organization_id=directory.parse_id(org, "--org"),
        role=role,
        permissions=tuple(permission or ()),
        credential=credential,
    )
    result = run_with_accord(
        lambda a: provisioning.create_user(
            a, request, caller=cli_caller(acting_user), idempotency_key=idempotency_key
        )
    )
    if as_json:
        print_json(result)
        return
    user = result["user"]
    how = "adopted the existing identity of" if result["reused_identity"] else "created"
    out.print(f"{how} {user['email']} ({user['id']}), status {user['status']}")
    if result.get("temporary_password"):
        out.print(f"temporary password (shown once): {result['temporary_password']}")


@app.command("register")
@command
def register_command(
    email: Annotated[str, typer.Argument(help="The registrant's e-mail address.")],
    password: Annotated[str, typer.Option("--password", help="The password they chose.")],
    name: Annotated[str, typer.Option("--name", help="Full name.")],
    org_name: Annotated[str | None, typer.Option("--org-name", help="Organization name.")] = None,
    source: Annotated[RegistrationSource, typer.Option("--source")] = RegistrationSource.API,
    idempotency_key: IdempotencyKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a person with exactly one organization of their own."""
    request = registration.Registration(
        email=email, password=password, full_name=name, organization_name=org_name, source=source
    )
    result = run_with_accord(
        lambda a: registration.register(a, request, idempotency_key=idempotency_key)
    )
    if as_json:
        print_json(result)
    else:
        org = result["organization"]
        out.print(f"registered {result['user']['email']} with organization {org['slug']}")


@users_app.command("delete")
@command
def users_delete(
    user_id: Annotated[str, typer.Argument(help="The user's id.")],
    idempotency_key: IdempotencyKey = None,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Deprovision a user: remove their IdP user, memberships and access."""
    result = run_with_accord(
        lambda a: deprovisioning.deprovision_user(
            a, user_id, caller=cli_caller(acting_user), idempotency_key=idempotency_key
        )
    )
    if as_json:
        print_json(result)
    else:
        out.print(f"deprovisioned {result['user_id']}")


# -- HTTP API and its tokens ---------------------------------------------------------------------

tokens_app = typer.Typer(help="API tokens for the HTTP API.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
@command
def tokens_create(
    platform: Annotated[
        bool, typer.Option("--platform", help="A token for every organization.")
    ] = False,
    org: Annotated[
        str | None, typer.Option("--org", help="A token for this organization only.")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "api token",
    as_json: JsonFlag = False,
) -> None:
    """Create an API token and print it once (only its digest is stored)."""
    from accord.domain.errors import InvalidInput
    from accord.services import tokens

    if platform == (org is not None):
        fail(InvalidInput("Give exactly one of --platform and --org ORG_ID."), as_json)
    token, record = run_with_accord(
        lambda a: tokens.create_token(a, name=name, organization_id=org)
    )
    if as_json:
        print_json({"token": token, **record})
        return
    scope = "platform" if org is None else f"organization {org}"
    out.print(f"created API token {record['id']} ({scope}); it is shown once, store it now:")
    print(token)


@tokens_app.command("revoke")
@command
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke an API token at once (revoking it again is fine)."""
    from accord.services import tokens

    run_with_accord(lambda a: tokens.revoke_token(a, token_id))
    if as_json:
        print_json({"id": token_id, "revoked": True})
    else:
        out.print(f"revoked API token {token_id}")


@app.command("serve")
@command
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not run a background worker in-process.")
    ] = False,
) -> None:
    """Apply the migrations, then serve the HTTP API (OpenAPI at /docs) and a worker."""
    import uvicorn

    if no_worker:  # read by each server process's Settings
        os.environ["ACCORD_SERVE_WORKER"] = "false"

    settings = Settings()
    url = resolve_database_url(settings)
    migrate.upgrade(url)
    err.print(f"accord API on http://{host}:{port} (docs at /docs)")
    err.print(f"database: {describe_database(settings, url)}")
    uvicorn.run(
        "accord.entrypoints.api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # accord writes its own JSON access log
        log_level="warning",
    )


@app.command("worker")
@command
def worker_command(
    once: Annotated[
        bool, typer.Option("--once", help="Work until nothing is due, then exit.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Finish open operations, deliver mail, expire old tokens and keys."""
    from accord.entrypoints import worker as worker_entry

    result = run_with_accord(lambda a: worker_entry.run(a, once=once))
    if result is not None:
        summary = {
            "succeeded": result.succeeded,
            "failed": result.failed,
            "postponed": result.postponed,
            "mail_sent": result.mail.sent,
            "mail_failed": result.mail.failed,
        }
        print_json(summary) if as_json else out.print(
            ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in summary.items())
        )


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except Exception as exc:  # the last line of defence: a bug, reported without a traceback
        if os.environ.get("ACCORD_DEBUG"):
            raise
        err.print(f"[red]internal error[/red]: {type(exc).__name__}. Please report it.")
        sys.exit(2)

"""What every ``accord`` command shares: consoles, options, JSON output, the failure contract and
the wrapper that runs a service on a freshly built accord.

This module, like every module of the CLI, imports only typer and the standard library when it
loads: rich, the settings, the services and the database load when a command runs, so that
``accord --help`` (and a mistyped option) answers at once.
"""

from __future__ import annotations

import functools
import getpass
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from accord.bootstrap import Accord
    from accord.domain.callers import Caller
    from accord.domain.errors import AccordError

F = TypeVar("F", bound=Callable[..., Any])

INTERRUPTED = 130
UUID_WIDTH = 36

# -- options more than one command takes ---------------------------------------------------------

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print JSON for scripts (no table, no progress).")
]
ActingUser = Annotated[
    str | None, typer.Option("--acting-user", help="Who is acting, for the audit trail.")
]
IdempotencyKey = Annotated[
    str | None,
    typer.Option("--idempotency-key", help="Retry-safe key: the same key replays the result."),
]
FullName = Annotated[str, typer.Option("--name", help="Full name.")]
Yes = Annotated[bool, typer.Option("--yes", help="Do it (default: only show what would change).")]


# -- output --------------------------------------------------------------------------------------


@functools.cache
def out() -> Console:
    """The console for results (stdout)."""
    from rich.console import Console

    return Console(soft_wrap=True)


@functools.cache
def err() -> Console:
    """The console for progress, hints and errors (stderr)."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True, highlight=False)


def print_json(value: Any) -> None:
    print(json.dumps(value, default=str, indent=2))


def print_table(rows: list[dict[str, Any]], columns: list[str], title: str) -> None:
    """``rows`` as a table of ``columns`` (their keys) on stdout. Nothing is cut on a narrow
    terminal: cells fold, and an id keeps one line (it is there to be copied)."""
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold", min_width=UUID_WIDTH if column == "id" else None)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    out().print(table)


# -- the failure contract ------------------------------------------------------------------------


def fail(error: AccordError, as_json: bool) -> None:
    """Report ``error`` as the CLI promises, then exit with status 1."""
    if as_json:
        print(json.dumps({"code": error.code, "message": error.message}))
    else:
        err().print(f"[red]error[/red] ({error.code}): {error.message}", highlight=False)
    raise typer.Exit(1)


def guarded(fn: F) -> F:
    """``fn`` with domain errors (and interrupts) turned into the CLI's failure contract."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from accord.domain.errors import AccordError

        try:
            return fn(*args, **kwargs)
        except AccordError as error:
            fail(error, bool(kwargs.get("as_json", False)))
        except KeyboardInterrupt:
            err().print("interrupted")
            raise typer.Exit(INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]


def command(group: typer.Typer, name: str) -> Callable[[F], F]:
    """Register the decorated function as ``group``'s command ``name``, guarded."""

    def register(fn: F) -> F:
        group.command(name)(guarded(fn))
        return fn

    return register


# -- running a service ---------------------------------------------------------------------------


def run_with_accord(work: Callable[[Accord], Awaitable[Any]]) -> Any:
    """Build accord from the environment, run ``work`` on it, and close it."""
    import asyncio

    from accord.bootstrap import build
    from accord.config import Settings

    async def main() -> Any:
        accord = build(Settings())
        try:
            return await work(accord)
        finally:
            await accord.aclose()

    return asyncio.run(main())


def cli_caller(acting_user: str | None, role: str = "cli") -> Caller:
    """The CLI acts with platform scope; the audit trail names the OS user as the principal
    and ``--acting-user`` as a claim."""
    from accord.domain.callers import Caller
    from accord.domain.principals import Principal

    operator = Principal.system(f"{role}:{getpass.getuser()}")
    return Caller.platform("cli", acting_user, principal=operator)

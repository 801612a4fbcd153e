"""The drift commands: reconcile, cleanup-orphans, import, doctor (``orgs merge`` is with the
organizations). Beyond the CLI's contract, reconcile, import and doctor exit with status 3 when
something is left for a person."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from accord.domain.drift import Action, DriftClass, ForeignPolicy, OrphanRowPolicy
from accord.entrypoints.cli.common import (
    ActingUser,
    JsonFlag,
    Yes,
    cli_caller,
    command,
    err,
    out,
    print_json,
    run_with_accord,
)

LEFT_FOR_A_PERSON = 3
SHOWN_PER_CLASS = 20

app = typer.Typer()  # commands of the top level


@contextmanager
def progress(enabled: bool, total: int | None = None) -> Iterator[Callable[[str, int], None]]:
    """A ``tick(stage, done)`` that draws rich progress on stderr (a no-op when disabled)."""
    if not enabled:
        yield lambda stage, done: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,}"))
    with Progress(*columns, TimeElapsedColumn(), console=err(), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def tick(stage: str, done: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        yield tick


# -- reconcile ----------------------------------------------------------------------------------


@command(app, "reconcile")
def reconcile_command(
    fix: Annotated[bool, typer.Option("--fix", help="Apply the safe repairs.")] = False,
    orphan_rows: Annotated[
        OrphanRowPolicy,
        typer.Option("--orphan-rows", help="Rows whose IdP user is gone: report them, or fix."),
    ] = OrphanRowPolicy.REPORT,
    foreign_idp_users: Annotated[
        ForeignPolicy,
        typer.Option("--foreign-idp-users", help="IdP users accord did not create."),
    ] = ForeignPolicy.REPORT,
    grace: Annotated[
        float,
        typer.Option("--grace", min=0, help="Seconds an idle operation waits for a worker."),
    ] = 300.0,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Find drift between the database and the IdP; with --fix, repair what is safe.

    Exit status 0 when no drift remains, 3 when some is left for a person.
    """
    from accord.services.reconcile import ReconcileOptions, reconcile

    options = ReconcileOptions(
        fix=fix,
        orphan_rows=orphan_rows,
        foreign_idp_users=foreign_idp_users,
        grace_seconds=grace,
        actor=cli_caller(acting_user, "reconcile").actor,
    )
    with progress(not as_json) as tick:
        report = run_with_accord(lambda a: reconcile(a, options, progress=tick))
    if as_json:
        print_json(report.as_dict())
    else:
        print_report(report)
    if report.remaining:
        raise typer.Exit(LEFT_FOR_A_PERSON)


def print_report(report: Any) -> None:
    console = out()
    console.print("reconcile: " + ("repairs applied" if report.fix else "dry run, nothing changed"))
    for drift in DriftClass:
        if not report.found[drift]:
            continue
        console.print(f"{drift.value}: {report.found[drift]} found, {report.fixed[drift]} fixed")
        for finding in report.findings[drift][:SHOWN_PER_CLASS]:
            verdict = describe_verdict(finding, report.fix)
            console.print(f"  {finding.email or '-'}  {verdict}  {finding.note}")
        if report.found[drift] > SHOWN_PER_CLASS:
            console.print(f"  … and {report.found[drift] - SHOWN_PER_CLASS} more (see --json)")
    if report.remaining:
        hint = "" if report.fix else "; `--fix` repairs what is safe"
        console.print(f"{report.remaining} item(s) of drift remain{hint}")
    else:
        console.print("no drift remains")


def describe_verdict(finding: Any, fixing: bool) -> str:
    if finding.done:
        return f"done: {finding.action.value}"
    if finding.action == Action.LEAVE:
        return "left for a person:"
    return "not done:" if fixing else f"would {finding.action.value}:"


# -- cleanup-orphans -----------------------------------------------------------------------------


@command(app, "cleanup-orphans")
def cleanup_orphans_command(
    email: Annotated[str | None, typer.Argument(help="Only this e-mail address.")] = None,
    yes: Yes = False,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """List rows that were never finished (no working IdP identity); remove them with --yes."""
    from accord.services.cleanup import cleanup_orphans

    actor = cli_caller(acting_user, "cleanup").actor
    items = run_with_accord(lambda a: cleanup_orphans(a, email=email, remove=yes, actor=actor))
    if as_json:
        print_json(items)
        return
    if not items:
        out().print("no rows were left unfinished")
    for item in items:
        out().print(f"{item['email']}  {item['status']}  {item['action']}: {item['note']}")


# -- import --------------------------------------------------------------------------------------


@command(app, "import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or JSON Lines: email, full_name, organization_id or organization_name, role.",
            exists=True,
            dir_okay=False,
        ),
    ],
    org: Annotated[
        str | None, typer.Option("--org", help="Organization id for rows that name none.")
    ] = None,
    results: Annotated[
        Path | None, typer.Option("--results", help="Where to write one result per row.")
    ] = None,
    parallelism: Annotated[
        int,
        typer.Option(
            "--parallelism",
            min=1,
            max=32,
            help="Rows run at once on the per-row path (other IdPs, and rows a batch leaves).",
        ),
    ] = 4,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            min=0,
            max=5000,
            help="Rows per set-wise batch on an IdP with a bulk create (the built-in one): "
            "three transactions a batch. 0: every row on its own through the engine.",
        ),
    ] = 500,
    max_users: Annotated[
        int, typer.Option("--max-users", min=1, help="Limit of organizations the import makes.")
    ] = 10,
    adopt_existing: Annotated[
        bool,
        typer.Option(
            "--adopt-existing",
            help="Link IdP accounts accord did not create, as they are (no password reset).",
        ),
    ] = False,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Provision users from a file through the engine; a rerun changes nothing.

    Exit status 0 when every row succeeded, 3 when some rows failed (see the results file).
    """
    from accord.services.importer import import_users

    caller = cli_caller(acting_user, "import")
    with progress(not as_json, count_rows(file)) as tick:
        counted = {"rows": 0}

        def advance(rows: int) -> None:
            counted["rows"] += rows
            tick("importing rows", counted["rows"])

        summary = run_with_accord(
            lambda a: import_users(
                a,
                file,
                caller=caller,
                results=results,
                default_org=org,
                parallelism=parallelism,
                batch_size=batch_size,
                max_users=max_users,
                adopt_existing=adopt_existing,
                progress=advance,
            )
        )
    body = summary.as_dict()
    if as_json:
        print_json(body)
    else:
        counts = ", ".join(f"{k} {v}" for k, v in body.items() if k not in ("results", "rows"))
        out().print(f"imported {body['rows']} rows: {counts}; results in {body['results']}")
    if summary.counts.get("error"):
        raise typer.Exit(LEFT_FOR_A_PERSON)


def count_rows(file: Path) -> int:
    """The rows of an import file, for the progress bar: its lines, less a CSV's header."""
    with file.open("rb") as handle:
        return max(sum(1 for _ in handle) - (file.suffix.lower() == ".csv"), 0)


# -- doctor --------------------------------------------------------------------------------------


@command(app, "doctor")
def doctor_command(
    sample: Annotated[int, typer.Option("--sample", min=1, max=10_000)] = 200,
    as_json: JsonFlag = False,
) -> None:
    """Check configuration, database, migrations and IdP, and sample for drift, in seconds.

    Exit status 0 when healthy, 3 when a check failed or the sample shows drift.
    """
    import asyncio

    from accord.bootstrap import diagnose
    from accord.config import Settings

    diagnosis = asyncio.run(diagnose(Settings(), sample=sample))
    if as_json:
        print_json(diagnosis.as_dict())
    else:
        for check in diagnosis.checks:
            mark = "[green]ok[/green]  " if check["ok"] else "[red]FAIL[/red]"
            out().print(f"{mark} {check['name']}: {check['detail']}")
        if diagnosis.drift_sample:
            seen = ", ".join(f"{k} {v}" for k, v in diagnosis.drift_sample.items())
            out().print(f"drift sample: {seen}")
    if not diagnosis.healthy:
        raise typer.Exit(LEFT_FOR_A_PERSON)

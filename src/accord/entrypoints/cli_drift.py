"""The drift commands: reconcile, cleanup-orphans, orgs merge, import, doctor.

``register(app, orgs_app)`` adds them to the ``accord`` command line (entrypoints/cli.py). They
follow its contract: ``--json`` for scripts, exit status 1 and one readable line on failure.
Beyond it, reconcile, import and doctor exit with status 3 when something is left for a person.
"""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from accord.domain.callers import Caller
from accord.domain.drift import Action, DriftClass, ForeignPolicy, OrphanRowPolicy

LEFT_FOR_A_PERSON = 3
SHOWN_PER_CLASS = 20

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (and no progress).")]
ActingUser = Annotated[
    str | None, typer.Option("--acting-user", help="Who is acting, for the audit trail.")
]


def _base() -> Any:
    from accord.entrypoints import cli  # at call time: cli imports this module

    return cli


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The CLI's failure contract (entrypoints/cli.py ``command``), applied at call time."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _base().command(fn)(*args, **kwargs)

    return wrapper


def _caller(acting_user: str | None, role: str) -> Caller:
    return Caller.platform("cli", acting_user or f"{role}:{getpass.getuser()}")


@contextmanager
def _progress(enabled: bool, total: int | None = None) -> Iterator[Callable[[str, int], None]]:
    """A ``tick(stage, done)`` that draws rich progress on stderr (a no-op when disabled)."""
    if not enabled:
        yield lambda stage, done: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,}"))
    with Progress(*columns, TimeElapsedColumn(), console=_base().err, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def tick(stage: str, done: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        yield tick


# -- reconcile ----------------------------------------------------------------------------------


@_guarded
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
        actor=_caller(acting_user, "reconcile").actor,
    )
    with _progress(not as_json) as tick:
        report = _base().run_with_accord(lambda a: reconcile(a, options, progress=tick))
    if as_json:
        _base().print_json(report.as_dict())
    else:
        _print_report(report)
    if report.remaining:
        raise typer.Exit(LEFT_FOR_A_PERSON)


def _print_report(report: Any) -> None:
    out = _base().out
    out.print("reconcile: " + ("repairs applied" if report.fix else "dry run, nothing changed"))
    for drift in DriftClass:
        if not report.found[drift]:
            continue
        out.print(f"{drift.value}: {report.found[drift]} found, {report.fixed[drift]} fixed")
        for finding in report.findings[drift][:SHOWN_PER_CLASS]:
            out.print(f"  {finding.email or '-'}  {_verdict(finding, report.fix)}  {finding.note}")
        if report.found[drift] > SHOWN_PER_CLASS:
            out.print(f"  … and {report.found[drift] - SHOWN_PER_CLASS} more (see --json)")
    if report.remaining:
        hint = "" if report.fix else "; `--fix` repairs what is safe"
        out.print(f"{report.remaining} item(s) of drift remain{hint}")
    else:
        out.print("no drift remains")


def _verdict(finding: Any, fixing: bool) -> str:
    if finding.done:
        return f"done: {finding.action.value}"
    if finding.action == Action.LEAVE:
        return "left for a person:"
    return "not done:" if fixing else f"would {finding.action.value}:"


# -- cleanup-orphans -----------------------------------------------------------------------------


@_guarded
def cleanup_orphans_command(
    email: Annotated[str | None, typer.Argument(help="Only this e-mail address.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Remove them (default: only list).")] = False,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """List rows that were never finished (no working IdP identity); remove them with --yes."""
    from accord.services.cleanup import cleanup_orphans

    actor = _caller(acting_user, "cleanup").actor
    items = _base().run_with_accord(
        lambda a: cleanup_orphans(a, email=email, remove=yes, actor=actor)
    )
    if as_json:
        _base().print_json(items)
        return
    if not items:
        _base().out.print("no rows were left unfinished")
    for item in items:
        _base().out.print(f"{item['email']}  {item['status']}  {item['action']}: {item['note']}")


# -- orgs merge ----------------------------------------------------------------------------------


@_guarded
def orgs_merge_command(
    source: Annotated[str, typer.Argument(help="The organization to merge and remove (id/slug).")],
    target: Annotated[str, typer.Argument(help="The organization that stays (id or slug).")],
    yes: Annotated[bool, typer.Option("--yes", help="Merge (default: show the plan).")] = False,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Move SOURCE's members, permissions and settings into TARGET, then remove SOURCE."""
    from accord.services.merge import merge_organizations

    caller = _caller(acting_user, "cli")
    plan = _base().run_with_accord(
        lambda a: merge_organizations(a, source, target, caller=caller, apply=yes)
    )
    if as_json:
        _base().print_json(plan)
        return
    out = _base().out
    verb = "merged" if yes else "would merge"
    out.print(f"{verb} {plan['source']['slug']} into {plan['target']['slug']}:")
    out.print(f"  members added: {', '.join(plan['members_added']) or '-'}")
    out.print(f"  members in both (roles and permissions merged): {len(plan['members_merged'])}")
    out.print(f"  members after: {plan['members_after']} of at most {plan['max_users']}")
    out.print(f"  settings taken from the source: {', '.join(plan['settings_taken']) or '-'}")
    if plan["api_tokens_removed"]:
        out.print(f"  API tokens of the source removed with it: {plan['api_tokens_removed']}")
    if not yes:
        out.print("nothing changed: run again with --yes to merge")


# -- import --------------------------------------------------------------------------------------


@_guarded
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
    parallelism: Annotated[int, typer.Option("--parallelism", min=1, max=32)] = 4,
    max_users: Annotated[
        int, typer.Option("--max-users", min=1, help="Limit of organizations the import makes.")
    ] = 10,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Provision users from a file through the engine; a rerun changes nothing.

    Exit status 0 when every row succeeded, 3 when some rows failed (see the results file).
    """
    from accord.services.importer import import_users

    caller = _caller(acting_user, "import")
    with file.open("rb") as handle:
        total = max(sum(1 for _ in handle) - (file.suffix.lower() == ".csv"), 0)
    with _progress(not as_json, total) as tick:
        counted = {"rows": 0}

        def advance(rows: int) -> None:
            counted["rows"] += rows
            tick("importing rows", counted["rows"])

        summary = _base().run_with_accord(
            lambda a: import_users(
                a,
                file,
                caller=caller,
                results=results,
                default_org=org,
                parallelism=parallelism,
                max_users=max_users,
                progress=advance,
            )
        )
    body = summary.as_dict()
    if as_json:
        _base().print_json(body)
    else:
        counts = ", ".join(f"{k} {v}" for k, v in body.items() if k not in ("results", "rows"))
        _base().out.print(f"imported {body['rows']} rows: {counts}; results in {body['results']}")
    if summary.counts.get("error"):
        raise typer.Exit(LEFT_FOR_A_PERSON)


# -- doctor --------------------------------------------------------------------------------------


@_guarded
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
        _base().print_json(diagnosis.as_dict())
    else:
        out = _base().out
        for check in diagnosis.checks:
            mark = "[green]ok[/green]  " if check["ok"] else "[red]FAIL[/red]"
            out.print(f"{mark} {check['name']}: {check['detail']}")
        if diagnosis.drift_sample:
            seen = ", ".join(f"{k} {v}" for k, v in diagnosis.drift_sample.items())
            out.print(f"drift sample: {seen}")
    if not diagnosis.healthy:
        raise typer.Exit(LEFT_FOR_A_PERSON)


def register(app: typer.Typer, orgs_app: typer.Typer) -> None:
    """Add the drift commands to the ``accord`` command line."""
    app.command("reconcile")(reconcile_command)
    app.command("cleanup-orphans")(cleanup_orphans_command)
    app.command("import")(import_command)
    app.command("doctor")(doctor_command)
    orgs_app.command("merge")(orgs_merge_command)

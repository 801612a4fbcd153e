"""``accord events``: read the change feed (every committed change, once, in order)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from accord.entrypoints.cli.common import JsonFlag, cli_caller, command, err, out

app = typer.Typer(
    name="events",
    help="The change feed: every committed change once, in order (GET /api/events).",
    no_args_is_help=True,
)

POLL_SECONDS = 1.0


@command(app, "tail")
def events_tail(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep waiting for new events (Ctrl-C stops).")
    ] = False,
    types: Annotated[
        list[str] | None,
        typer.Option("--type", "-t", help="Only this type (repeatable), e.g. user.created."),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option("--after", help="Continue after this cursor (the sequence printed last)."),
    ] = None,
    organization: Annotated[
        str | None, typer.Option("--org", help="Only this organization's events (its id).")
    ] = None,
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, help="Seconds between polls with --follow.")
    ] = POLL_SECONDS,
    as_json: JsonFlag = False,
) -> None:
    """Print the feed's events from the oldest kept one (or after --after); one JSON object a
    line with --json. On Ctrl-C it stops cleanly and names the cursor to resume from."""
    from uuid import UUID

    from accord.domain import errors

    try:
        org_id = UUID(organization) if organization else None
    except ValueError:
        raise errors.InvalidInput(
            f"--org must be an organization id, not {organization!r}."
        ) from None
    state = {"cursor": after}
    try:
        stopped = _run(state, follow, tuple(types or ()), org_id, interval, as_json)
    except KeyboardInterrupt:  # before the loop took Ctrl-C over, or a second one
        stopped = True
    if stopped:
        err().print(f"stopped; resume with --after {state['cursor'] or 0}")


def _run(
    state: dict[str, Any],
    follow: bool,
    types: tuple[str, ...],
    org_id: Any,
    interval: float,
    as_json: bool,
) -> bool:
    """Print the events; with ``follow``, until Ctrl-C (then True). Ctrl-C is taken between
    two reads, never in the middle of one: an interrupted read would leave its statement, its
    transaction and its pooled connection to be torn down by cancellation."""
    import asyncio
    import contextlib
    import signal

    from accord.bootstrap import Accord
    from accord.entrypoints.cli.common import run_with_accord
    from accord.services.events import MAX_PAGE_SIZE, read_feed

    caller = cli_caller(None)

    async def tail(accord: Accord) -> bool:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def ctrl_c() -> None:
            stop.set()
            loop.remove_signal_handler(signal.SIGINT)  # a second one interrupts a hung read

        if follow:
            loop.add_signal_handler(signal.SIGINT, ctrl_c)
        try:
            await read_until(accord, stop)
        finally:
            loop.remove_signal_handler(signal.SIGINT)  # False when none is installed
        return follow

    async def read_until(accord: Accord, stop: asyncio.Event) -> None:  # stop: Ctrl-C came
        while not stop.is_set():
            page = await read_feed(
                accord,
                caller=caller,
                after=state["cursor"],
                limit=MAX_PAGE_SIZE,
                types=types,
                organization_id=org_id,
            )
            for event in page["items"]:
                _print(event, as_json)
                state["cursor"] = str(event["sequence"])
            state["cursor"] = page["next_cursor"]
            if not page["has_more"]:
                if not follow:
                    return
                with contextlib.suppress(TimeoutError):  # a poll interval: nothing new yet
                    await asyncio.wait_for(stop.wait(), interval)

    return bool(run_with_accord(tail))


def _print(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        import json

        print(json.dumps(event, default=str), flush=True)
        return
    subject = event["subject"]
    changed = ",".join(event["changed"]) or "-"
    out().print(
        f"{event['sequence']}  {event['occurred_at']}  {event['type']}  "
        f"{subject['type']}:{subject['id']} v{event['version']}  changed={changed}",
        highlight=False,
        markup=False,
    )

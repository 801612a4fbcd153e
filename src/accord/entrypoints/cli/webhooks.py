"""``accord webhooks``: register, list, remove, test and replay webhook endpoints."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from accord.entrypoints.cli.common import (
    JsonFlag,
    cli_caller,
    command,
    out,
    print_json,
    print_table,
    run_with_accord,
)

app = typer.Typer(
    name="webhooks",
    help="Webhook endpoints: the change feed POSTed, signed (Standard Webhooks v1).",
    no_args_is_help=True,
)


def _id(text: str) -> Any:
    from uuid import UUID

    from accord.domain import errors

    try:
        return UUID(text)
    except ValueError:
        raise errors.InvalidInput(f"{text!r} is not a webhook id.") from None


@command(app, "add")
def webhooks_add(
    url: Annotated[str, typer.Argument(help="Where to POST events (http:// or https://).")],
    types: Annotated[
        list[str] | None,
        typer.Option("--type", "-t", help="Only this type (repeatable); none: every type."),
    ] = None,
    organization: Annotated[
        str | None, typer.Option("--org", help="Only this organization's events (its id).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register an endpoint; prints its signing secret, shown only this once."""
    from accord.services import webhooks

    org = _id(organization) if organization else None

    async def add(accord: Any) -> dict[str, Any]:
        endpoint, secret = await webhooks.create_endpoint(
            accord, cli_caller(None), url=url, event_types=types or (), organization_id=org
        )
        return {**webhooks.endpoint_json(endpoint), "secret": secret}

    made = run_with_accord(add)
    if as_json:
        print_json(made)
        return
    out().print(f"webhook {made['id']} → {made['url']}", markup=False)
    out().print(f"signing secret (shown only now): {made['secret']}", markup=False)


@command(app, "list")
def webhooks_list(as_json: JsonFlag = False) -> None:
    """Every endpoint, oldest first."""
    from accord.services import webhooks

    async def all_of(accord: Any) -> list[dict[str, Any]]:
        found = await webhooks.list_endpoints(accord, cli_caller(None))
        return [webhooks.endpoint_json(e) for e in found]

    rows = run_with_accord(all_of)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["event_types"] = ",".join(row["event_types"]) or "all"
    print_table(rows, ["id", "url", "event_types", "enabled", "disabled_reason"], "Webhooks")


@command(app, "remove")
def webhooks_remove(
    webhook_id: Annotated[str, typer.Argument(help="The endpoint's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Remove an endpoint; its pending deliveries are dropped."""
    from accord.services import webhooks

    wid = _id(webhook_id)
    run_with_accord(lambda accord: webhooks.delete_endpoint(accord, cli_caller(None), wid))
    if as_json:
        print_json({"id": str(wid), "deleted": True})
    else:
        out().print(f"removed webhook {wid}")


@command(app, "test")
def webhooks_test(
    webhook_id: Annotated[str, typer.Argument(help="The endpoint's id.")],
    as_json: JsonFlag = False,
) -> None:
    """POST a signed ``webhook.test`` message now and show how the receiver answered
    (exit status 1 unless it answered 2xx)."""
    from accord.services import webhooks

    wid = _id(webhook_id)
    answer = run_with_accord(lambda accord: webhooks.send_test(accord, cli_caller(None), wid))
    if as_json:
        print_json(answer)
    elif answer["ok"]:
        out().print(f"delivered: HTTP {answer['status']} in {answer['latency_ms']} ms")
    else:
        out().print(f"not delivered: {answer['error']}", markup=False)
    if not answer["ok"]:
        raise typer.Exit(1)


@command(app, "replay")
def webhooks_replay(
    webhook_id: Annotated[str, typer.Argument(help="The endpoint's id.")],
    after: Annotated[
        int, typer.Option("--after", min=0, help="Deliver again the events after this sequence.")
    ] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Deliver again (through the worker) every matching event after --after."""
    from accord.services import webhooks

    wid = _id(webhook_id)
    start = run_with_accord(
        lambda accord: webhooks.replay(accord, cli_caller(None), wid, after=after)
    )
    if as_json:
        print_json({"id": str(wid), "replaying_after": start})
    else:
        out().print(f"webhook {wid}: the worker delivers again the events after {start}")

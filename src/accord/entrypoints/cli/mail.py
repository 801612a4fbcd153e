"""``accord mail``: read the embedded mailbox (mail kept because no SMTP server is set)."""

from __future__ import annotations

from typing import Annotated

import typer

from accord.entrypoints.cli.common import (
    JsonFlag,
    cli_caller,
    command,
    err,
    out,
    print_json,
    print_table,
    run_with_accord,
)

app = typer.Typer(
    name="mail",
    help="The embedded mailbox: where mail goes without SMTP settings. Its links are secrets.",
    no_args_is_help=True,
)


@command(app, "list")
def mail_list(
    to: Annotated[str | None, typer.Option("--to", help="Only mail to this address.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List the newest messages (with the links in them)."""
    from accord.services import mailbox

    caller = cli_caller(None)
    page = run_with_accord(lambda a: mailbox.list_mail(a, caller=caller, to=to, limit=limit))
    rows = page["items"]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["links"] = "\n".join(row["links"]) or "-"
    print_table(rows, ["id", "created_at", "to", "subject", "links"], "mailbox")
    if not rows:
        err().print("the mailbox is empty (with SMTP settings, mail is sent instead)")


@command(app, "show")
def mail_show(
    message_id: Annotated[int, typer.Argument(help="The message's id (`accord mail list`).")],
    as_json: JsonFlag = False,
) -> None:
    """Print one message: its subject, text and the links found in it."""
    from accord.services import mailbox

    caller = cli_caller(None)
    message = run_with_accord(lambda a: mailbox.get_mail(a, message_id, caller=caller))
    if as_json:
        print_json(message)
        return
    console = out()
    console.print(f"To: {message['to']}", highlight=False)
    console.print(f"Subject: {message['subject']}", highlight=False)
    console.print(f"Date: {message['created_at']}\n", highlight=False)
    console.print(message["body"], highlight=False, markup=False)
    console.print("Links:", highlight=False)
    for link in message["links"] or ["-"]:
        console.print(f"  {link}", highlight=False, markup=False)

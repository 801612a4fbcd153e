"""``accord members``: list an organization's members, add or change one, remove one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from accord.domain.model import Role
from accord.entrypoints.cli.common import (
    ActingUser,
    JsonFlag,
    cli_caller,
    command,
    out,
    print_json,
    print_table,
    run_with_accord,
)

if TYPE_CHECKING:
    from accord.bootstrap import Accord

app = typer.Typer(name="members", help="Memberships of organizations.", no_args_is_help=True)

Org = Annotated[str, typer.Option("--org", help="Organization id.")]
User = Annotated[str, typer.Option("--user", help="User id.")]


@command(app, "list")
def members_list(org: Org, as_json: JsonFlag = False) -> None:
    """List an organization's members (every page)."""
    from accord.services import members

    caller = cli_caller(None)

    async def every_page(accord: Accord) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = await members.list_members(accord, org, caller=caller, cursor=cursor, limit=200)
            found.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return found

    rows = run_with_accord(every_page)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["permissions"] = ", ".join(row["permissions"]) or "-"
    print_table(rows, ["user_id", "email", "role", "permissions"], "members")


@command(app, "set")
def members_set(
    org: Org,
    user: User,
    role: Annotated[Role, typer.Option("--role")] = Role.ORG_USER,
    permission: Annotated[
        list[str] | None,
        typer.Option("--permission", help="A permission (repeatable); replaces the member's."),
    ] = None,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Add an existing user to an organization, or set a member's role and permissions."""
    from accord.services import members

    caller = cli_caller(acting_user)
    member, added = run_with_accord(
        lambda a: members.put_member(
            a, org, user, role=role, permissions=tuple(permission or ()), caller=caller
        )
    )
    if as_json:
        print_json({**member, "added": added})
        return
    verb = "added" if added else "set"
    out().print(f"{verb} {member['email']} in organization {org}: {member['role']}")


@command(app, "remove")
def members_remove(
    org: Org, user: User, acting_user: ActingUser = None, as_json: JsonFlag = False
) -> None:
    """Remove a member from an organization (the account stays, by default)."""
    from accord.services import members

    caller = cli_caller(acting_user)
    result = run_with_accord(lambda a: members.remove_member(a, org, user, caller=caller))
    if as_json:
        print_json(result)
        return
    line = f"removed user {user} from organization {org}"
    if result["deprovision_operation_id"]:
        line += f"; it was their last: deprovisioning ({result['deprovision_operation_id']})"
    out().print(line)

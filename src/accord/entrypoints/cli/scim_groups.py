"""``accord scim-group``: what membership of an organization's Okta or Entra ID group grants."""

from __future__ import annotations

from typing import Annotated

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
    name="scim-group",
    help="SCIM group grants: the role and permissions a pushed group gives its members.",
    no_args_is_help=True,
)

Org = Annotated[str, typer.Option("--org", help="The organization the SCIM client feeds.")]
Group = Annotated[str, typer.Option("--group", help="The group's displayName (any case).")]


@command(app, "map")
def scim_group_map(
    org: Org,
    group: Group,
    role: Annotated[str, typer.Option("--role", help="org_admin or org_user.")],
    permission: Annotated[
        list[str] | None, typer.Option("--permission", help="A permission (repeatable).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Make the group grant a role (and permissions); its members get it at once."""
    from accord.services import scim_groups

    grant = run_with_accord(
        lambda a: scim_groups.map_group(
            a, org, group, role=role, permissions=permission or [], caller=cli_caller(None)
        )
    )
    if as_json:
        print_json(grant)
        return
    out().print(f"members of the group {grant['group']!r} are now {grant['role']}")


@command(app, "unmap")
def scim_group_unmap(org: Org, group: Group, as_json: JsonFlag = False) -> None:
    """Remove the group's grant; its members' roles are recomputed without it."""
    from accord.services import scim_groups

    run_with_accord(lambda a: scim_groups.unmap_group(a, org, group, caller=cli_caller(None)))
    if as_json:
        print_json({"organization_id": org, "group": group, "unmapped": True})
    else:
        out().print(f"the group {group!r} grants nothing any more")


@command(app, "list")
def scim_group_list(org: Org, as_json: JsonFlag = False) -> None:
    """List the organization's group grants."""
    from accord.services import scim_groups

    rows = run_with_accord(lambda a: scim_groups.list_grants(a, org))
    if as_json:
        print_json(rows)
        return
    print_table(rows, ["group", "role", "permissions"], "SCIM group grants")

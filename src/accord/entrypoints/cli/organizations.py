"""``accord orgs``: list, create, update and merge organizations."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from accord.entrypoints.cli.common import (
    ActingUser,
    JsonFlag,
    Yes,
    cli_caller,
    command,
    out,
    print_json,
    print_table,
    run_with_accord,
)

app = typer.Typer(name="orgs", help="Organizations.", no_args_is_help=True)


@command(app, "list")
def orgs_list(as_json: JsonFlag = False) -> None:
    """List organizations."""
    from accord.services import directory

    rows = run_with_accord(directory.list_organizations)
    if as_json:
        print_json(rows)
    else:
        columns = ["id", "slug", "display_name", "kind", "max_users", "members"]
        print_table(rows, columns, "organizations")


@command(app, "create")
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
    from accord.services import organizations

    request = organizations.NewOrganization(
        name=name, display_name=display_name, max_users=max_users, plan_type=plan_type
    )
    caller = cli_caller(acting_user)
    org = run_with_accord(lambda a: organizations.create_organization(a, request, caller=caller))
    if as_json:
        print_json(org)
    else:
        out().print(f"created organization {org['slug']} ({org['id']}), up to {max_users} members")


@command(app, "merge")
def orgs_merge(
    source: Annotated[str, typer.Argument(help="The organization to merge and remove (id/slug).")],
    target: Annotated[str, typer.Argument(help="The organization that stays (id or slug).")],
    yes: Yes = False,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Move SOURCE's members, permissions and settings into TARGET, then remove SOURCE."""
    from accord.services.merge import merge_organizations

    caller = cli_caller(acting_user)
    plan = run_with_accord(
        lambda a: merge_organizations(a, source, target, caller=caller, apply=yes)
    )
    if as_json:
        print_json(plan)
    else:
        print_merge_plan(plan, applied=yes)


def print_merge_plan(plan: dict[str, Any], *, applied: bool) -> None:
    console = out()
    verb = "merged" if applied else "would merge"
    console.print(f"{verb} {plan['source']['slug']} into {plan['target']['slug']}:")
    console.print(f"  members added: {', '.join(plan['members_added']) or '-'}")
    console.print(
        f"  members in both (roles and permissions merged): {len(plan['members_merged'])}"
    )
    console.print(f"  members after: {plan['members_after']} of at most {plan['max_users']}")
    console.print(f"  settings taken from the source: {', '.join(plan['settings_taken']) or '-'}")
    if plan["api_tokens_removed"]:
        console.print(f"  API tokens of the source removed with it: {plan['api_tokens_removed']}")
    if not applied:
        console.print("nothing changed: run again with --yes to merge")


@command(app, "update")
def orgs_update(
    organization_id: Annotated[str, typer.Argument(help="The organization's id.")],
    name: Annotated[str | None, typer.Option("--name", help="The new display name.")] = None,
    max_users: Annotated[
        int | None, typer.Option("--max-users", min=1, help="The new member limit.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="trial, active or suspended.")
    ] = None,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Change an organization's display name, member limit or status."""
    from accord.services import organizations

    change = organizations.OrganizationUpdate(display_name=name, max_users=max_users, status=status)
    caller = cli_caller(acting_user)
    org = run_with_accord(
        lambda a: organizations.update_organization(a, organization_id, change, caller=caller)
    )
    if as_json:
        print_json(org)
    else:
        out().print(
            f"organization {org['slug']}: {org['display_name']!r}, up to {org['max_users']} "
            f"members ({org['members']} now), {org['status']}, version {org['version']}"
        )

"""``accord orgs``: list, create, update, merge and delete organizations."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from accord.entrypoints.cli.common import (
    ActingUser,
    IdempotencyKey,
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


@command(app, "delete")
def orgs_delete(
    organization_id: Annotated[str, typer.Argument(help="The organization's id.")],
    keep_users: Annotated[
        bool,
        typer.Option("--keep-users", help="Keep the members it leaves without organization."),
    ] = False,
    yes: Yes = False,
    idempotency_key: IdempotencyKey = None,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Offboard an organization: revoke its tokens and invitations, remove its memberships and
    deprovision the members it leaves with no organization (unless --keep-users)."""
    from accord.services import directory, offboarding

    if not yes:
        org = run_with_accord(lambda a: directory.get_organization(a, organization_id))
        if as_json:
            print_json({"would_delete": org})
        else:
            out().print(
                f"would delete {org['slug']} ({org['id']}) and its {org['members']} memberships"
                f"{'' if keep_users else ', deprovisioning members with no other organization'}"
                "; nothing changed: run again with --yes"
            )
        return
    caller, key = cli_caller(acting_user), idempotency_key
    report = run_with_accord(
        lambda a: offboarding.delete_organization(
            a, organization_id, caller=caller, keep_users=keep_users, idempotency_key=key
        )
    )
    if as_json:
        print_json(report)
    else:
        out().print(
            f"deleted {report['slug']}: {report['members_removed']} memberships removed, "
            f"{report['users_deprovisioned']} users deprovisioned "
            f"({report['identities_kept']} identities kept), "
            f"{report['invitations_revoked']} invitations and {report['tokens_revoked']} tokens "
            "revoked"
        )
        for user_id in report["identity_deletes_refused"]:
            out().print(f"  the identity provider refused to delete {user_id}'s identity")


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

"""``accord users`` (create, list, delete) and ``accord register``."""

from __future__ import annotations

from typing import Annotated

import typer

from accord.domain.model import CredentialMode, RegistrationSource, Role
from accord.entrypoints.cli.common import (
    ActingUser,
    FullName,
    IdempotencyKey,
    JsonFlag,
    cli_caller,
    command,
    out,
    print_json,
    print_table,
    run_with_accord,
)

app = typer.Typer(name="users", help="Users.", no_args_is_help=True)
registration_app = typer.Typer()  # `accord register`, a command of its own at the top level


@command(app, "create")
def users_create(
    email: Annotated[str, typer.Argument(help="The new user's e-mail address.")],
    name: FullName,
    org: Annotated[str, typer.Option("--org", help="Organization id.")],
    role: Annotated[Role, typer.Option("--role")] = Role.ORG_USER,
    permission: Annotated[
        list[str] | None, typer.Option("--permission", help="A permission (repeatable).")
    ] = None,
    credential: Annotated[CredentialMode, typer.Option("--credential")] = CredentialMode.INVITE,
    idempotency_key: IdempotencyKey = None,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Create (or adopt) a user in an organization."""
    from accord.services import directory, provisioning

    request = provisioning.NewUser(
        email=email,
        full_name=name,
        organization_id=directory.parse_id(org, "--org"),
        role=role,
        permissions=tuple(permission or ()),
        credential=credential,
    )
    caller = cli_caller(acting_user)
    result = run_with_accord(
        lambda a: provisioning.create_user(
            a, request, caller=caller, idempotency_key=idempotency_key
        )
    )
    if as_json:
        print_json(result)
        return
    user = result["user"]
    how = "adopted the existing identity of" if result["reused_identity"] else "created"
    out().print(f"{how} {user['email']} ({user['id']}), status {user['status']}")
    if result.get("temporary_password"):
        out().print(f"temporary password (shown once): {result['temporary_password']}")


@command(app, "list")
def users_list(
    org: Annotated[
        str | None, typer.Option("--org", help="Only members of this organization.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List users."""
    from accord.services import directory

    rows = run_with_accord(lambda accord: directory.list_users(accord, organization_id=org))
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["id", "email", "full_name", "status", "organizations"], "users")


@command(app, "delete")
def users_delete(
    user_id: Annotated[str, typer.Argument(help="The user's id.")],
    idempotency_key: IdempotencyKey = None,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Deprovision a user: remove their IdP user, memberships and access."""
    from accord.services import deprovisioning

    caller = cli_caller(acting_user)
    result = run_with_accord(
        lambda a: deprovisioning.deprovision_user(
            a, user_id, caller=caller, idempotency_key=idempotency_key
        )
    )
    if as_json:
        print_json(result)
    else:
        out().print(f"deprovisioned {result['user_id']}")


@command(registration_app, "register")
def register(
    email: Annotated[str, typer.Argument(help="The registrant's e-mail address.")],
    password: Annotated[str, typer.Option("--password", help="The password they chose.")],
    name: FullName,
    org_name: Annotated[str | None, typer.Option("--org-name", help="Organization name.")] = None,
    source: Annotated[RegistrationSource, typer.Option("--source")] = RegistrationSource.API,
    idempotency_key: IdempotencyKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a person with exactly one organization of their own."""
    from accord.services import registration

    request = registration.Registration(
        email=email, password=password, full_name=name, organization_name=org_name, source=source
    )
    result = run_with_accord(
        lambda a: registration.register(a, request, idempotency_key=idempotency_key)
    )
    if as_json:
        print_json(result)
    else:
        org = result["organization"]
        out().print(f"registered {result['user']['email']} with organization {org['slug']}")

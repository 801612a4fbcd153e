"""``accord users`` (create, list, update, delete, suspend, reactivate) and ``accord register``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import typer

from accord.domain.model import CredentialMode, RegistrationSource, Role
from accord.entrypoints.cli.common import (
    ActingUser,
    FullName,
    IdempotencyKey,
    JsonFlag,
    cli_caller,
    command,
    err,
    out,
    print_json,
    print_table,
    run_with_accord,
)

if TYPE_CHECKING:
    from accord.bootstrap import Accord

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
    credential: Annotated[
        CredentialMode | None,
        typer.Option(
            "--credential",
            help="Default: invite a new user; leave an adopted identity's credential alone.",
        ),
    ] = None,
    adopt_existing: Annotated[
        bool,
        typer.Option(
            "--adopt-existing",
            help="Link an identity that already exists in the IdP and that accord did not "
            "create (its password, name and metadata stay as they are).",
        ),
    ] = False,
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
        adopt_existing=adopt_existing,
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
        str | None,
        typer.Option("--org", metavar="ORG_ID_OR_SLUG", help="Only members of this organization."),
    ] = None,
    email: Annotated[str | None, typer.Option("--email", help="Only this e-mail address.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Users per page (at most 200).")] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Continue after the page that printed it.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List users a page at a time, ordered by id (the next page's --cursor goes to stderr)."""
    page, slugs = run_with_accord(
        lambda a: users_page(a, org=org, email=email, cursor=cursor, limit=limit)
    )
    if as_json:
        print_json(page["items"])
    else:
        rows = [user_row(user, slugs) for user in page["items"]]
        print_table(rows, ["email", "name", "status", "organizations", "id"], "users")
    if page["next_cursor"]:
        err().print(f"more users: the next page is --cursor {page['next_cursor']}")


async def users_page(
    accord: Accord, *, org: str | None, email: str | None, cursor: str | None, limit: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """A page of users as the API lists them, and every organization's slug by id."""
    from accord.services import directory, reads

    organizations = await directory.list_organizations(accord)
    page = await reads.list_users_page(
        accord,
        caller=cli_caller(None),
        organization_id=organization_id(org, organizations) if org else None,
        email=email,
        cursor=cursor,
        limit=limit,
    )
    return page, {o["id"]: o["slug"] for o in organizations}


def organization_id(ref: str, organizations: list[dict[str, Any]]) -> str:
    """The id of the organization that ``ref`` names by its slug, or ``ref`` if it is an id."""
    from accord.domain.errors import OrganizationNotFound

    by_slug = next((o["id"] for o in organizations if o["slug"] == ref), None)
    if by_slug is not None:
        return by_slug
    try:
        UUID(ref)
    except ValueError:
        raise OrganizationNotFound(
            f"No organization has the slug {ref!r}, and it is not an id (an id must be a UUID)."
        ) from None
    return ref  # the service tells an unknown id


def user_row(user: dict[str, Any], slugs: dict[str, str]) -> dict[str, Any]:
    """A user as a table row: memberships by slug and role, not by id."""
    memberships = ", ".join(
        f"{slugs.get(m['organization_id'], m['organization_id'])} ({m['role']})"
        for m in user["organizations"]
    )
    return {**user, "name": user["full_name"], "organizations": memberships or "-"}


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


@command(app, "update")
def users_update(
    user_id: Annotated[str, typer.Argument(help="The user's id.")],
    name: Annotated[str | None, typer.Option("--name", help="A new full name.")] = None,
    email: Annotated[str | None, typer.Option("--email", help="A new e-mail address.")] = None,
    idempotency_key: IdempotencyKey = None,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a user's e-mail address or name, in the IdP and in accord as one operation."""
    from accord.services import profile

    change = profile.ProfileChange(email=email, full_name=name)
    caller = cli_caller(acting_user)
    result = run_with_accord(
        lambda a: profile.update_user(
            a, user_id, change, caller=caller, idempotency_key=idempotency_key
        )
    )
    if as_json:
        print_json(result)
        return
    user = result["user"]
    what = "updated" if result["operation_id"] else "nothing to change for"
    out().print(f"{what} {user['email']} ({user['id']}), name {user['full_name']}")


@command(registration_app, "register")
def register(
    email: Annotated[str, typer.Argument(help="The registrant's e-mail address.")],
    password: Annotated[str, typer.Option("--password", help="The password they chose.")],
    name: FullName,
    org_name: Annotated[str | None, typer.Option("--org-name", help="Organization name.")] = None,
    source: Annotated[RegistrationSource, typer.Option("--source")] = RegistrationSource.API,
    verified: Annotated[
        bool,
        typer.Option(
            "--verified",
            help="You vouch for the address: register at once, mailing no verification link.",
        ),
    ] = False,
    idempotency_key: IdempotencyKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a person with exactly one organization of their own.

    With ACCORD_REGISTRATION__VERIFY_EMAIL (the default) and no --verified, the person gets a
    verification link by mail and the account exists once they use it.
    """
    from accord.services import registration, verification

    request = registration.Registration(
        email=email, password=password, full_name=name, organization_name=org_name, source=source
    )

    async def work(accord: Accord) -> dict[str, Any]:
        if accord.settings.registration.verify_email and not verified:
            await verification.request_registration(accord, request)
            return {"status": "verification_sent"}
        return await registration.register(accord, request, idempotency_key=idempotency_key)

    result = run_with_accord(work)
    if as_json:
        print_json(result)
    elif "status" in result:
        out().print(
            f"a verification link is on its way to {email} (if the address already has an "
            "account, its owner is told instead); use --verified to vouch for it yourself"
        )
    else:
        org = result["organization"]
        out().print(f"registered {result['user']['email']} with organization {org['slug']}")


@command(app, "suspend")
def users_suspend(
    user_id: Annotated[str, typer.Argument(help="The user's id.")],
    idempotency_key: IdempotencyKey = None,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Suspend a user: sign-in refused in accord and in the identity provider."""
    from accord.services import suspension

    caller = cli_caller(acting_user)
    result = run_with_accord(
        lambda a: suspension.suspend_user(
            a, user_id, caller=caller, idempotency_key=idempotency_key
        )
    )
    if as_json:
        print_json(result)
    else:
        out().print(f"suspended {result['user_id']}")


@command(app, "reactivate")
def users_reactivate(
    user_id: Annotated[str, typer.Argument(help="The user's id.")],
    idempotency_key: IdempotencyKey = None,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Reactivate a suspended user, in the identity provider and in accord."""
    from accord.services import suspension

    caller = cli_caller(acting_user)
    result = run_with_accord(
        lambda a: suspension.reactivate_user(
            a, user_id, caller=caller, idempotency_key=idempotency_key
        )
    )
    if as_json:
        print_json(result)
    else:
        status = (result.get("user") or {}).get("status", "")
        out().print(f"reactivated {result['user_id']} ({status})")

"""``accord invitations``: invite a person into an organization, list, resend and revoke."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import typer

from accord.bootstrap import Accord
from accord.entrypoints.cli.common import (
    ActingUser,
    JsonFlag,
    cli_caller,
    command,
    err,
    out,
    print_json,
    print_table,
    run_with_accord,
)

app = typer.Typer(name="invitations", help="Invitations into organizations.", no_args_is_help=True)

OrgRef = Annotated[
    str, typer.Option("--org", metavar="ORG_ID_OR_SLUG", help="The organization (id or slug).")
]
COLUMNS = ["id", "email", "role", "status", "expires_at", "invited_by"]


async def _org_id(accord: Accord, ref: str) -> str:
    from accord.entrypoints.cli.users import organization_id
    from accord.services import directory

    return organization_id(ref, await directory.list_organizations(accord))


def _show(invitation: dict[str, Any], as_json: bool, verb: str) -> None:
    if as_json:
        print_json(invitation)
    else:
        out().print(
            f"{verb} {invitation['email']} ({invitation['role']}, {invitation['status']}, "
            f"expires {invitation['expires_at']:%Y-%m-%d %H:%M} UTC): {invitation['id']}"
        )


@command(app, "create")
def invitations_create(
    email: Annotated[str, typer.Argument(help="The address to invite.")],
    org: OrgRef,
    role: Annotated[str, typer.Option("--role", help="org_user or org_admin.")] = "org_user",
    permission: Annotated[
        list[str] | None, typer.Option("--permission", help="A permission (repeatable).")
    ] = None,
    expires_in_hours: Annotated[
        float, typer.Option("--expires-in-hours", min=0.01, max=720, help="At most 30 days.")
    ] = 72.0,
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Invite EMAIL into an organization; the accept link goes out by mail."""
    from accord.services import invitations

    caller = cli_caller(acting_user)

    async def create(accord: Accord) -> tuple[dict[str, Any], bool]:
        request = invitations.Invite(
            organization_id=UUID(await _org_id(accord, org)),
            email=email,
            role=_role(role),
            permissions=tuple(permission or ()),
            expires_in_hours=expires_in_hours,
        )
        return await invitations.invite(accord, request, caller=caller)

    invitation, created = run_with_accord(create)
    _show(invitation, as_json, "invited" if created else "already invited")


def _role(role: str) -> Any:
    from accord.domain.errors import InvalidInput
    from accord.domain.model import Role

    if role not in set(Role):
        raise InvalidInput(f"The role {role!r} is not one of org_user, org_admin.")
    return Role(role)


@command(app, "list")
def invitations_list(
    org: OrgRef,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, accepted, revoked or expired.")
    ] = None,
    cursor: Annotated[str | None, typer.Option("--cursor", help="The next page's cursor.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List an organization's invitations, a page at a time."""
    from accord.domain.errors import InvalidInput
    from accord.domain.model import InvitationStatus
    from accord.services import invitations

    if status is not None and status not in set(InvitationStatus):
        raise InvalidInput(f"--status must be one of {', '.join(InvitationStatus)}.")
    wanted = InvitationStatus(status) if status else None

    async def page(accord: Accord) -> dict[str, Any]:
        org_id = await _org_id(accord, org)
        return await invitations.list_invitations(
            accord, org_id, caller=cli_caller(None), status=wanted, cursor=cursor, limit=limit
        )

    found = run_with_accord(page)
    if as_json:
        print_json(found)
        return
    print_table(found["items"], COLUMNS, "invitations")
    if found["next_cursor"]:
        err().print(f"more invitations: the next page is --cursor {found['next_cursor']}")


@command(app, "resend")
def invitations_resend(
    invitation_id: Annotated[str, typer.Argument(help="The invitation's id.")],
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Mail a fresh link; the previous one stops working."""
    from accord.services import invitations

    caller = cli_caller(acting_user)
    found = run_with_accord(lambda a: invitations.resend(a, invitation_id, caller=caller))
    _show(found, as_json, "sent a new link to")


@command(app, "revoke")
def invitations_revoke(
    invitation_id: Annotated[str, typer.Argument(help="The invitation's id.")],
    acting_user: ActingUser = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke a pending invitation; its seat is free again."""
    from accord.services import invitations

    caller = cli_caller(acting_user)
    found = run_with_accord(lambda a: invitations.revoke(a, invitation_id, caller=caller))
    _show(found, as_json, "revoked the invitation of")

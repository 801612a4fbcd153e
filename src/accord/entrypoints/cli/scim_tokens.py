"""``accord scim-token``: the tokens an organization's Okta or Entra ID sends to /scim/v2."""

from __future__ import annotations

from typing import Annotated

import typer

from accord.entrypoints.cli.common import (
    JsonFlag,
    command,
    out,
    print_json,
    print_table,
    run_with_accord,
)

app = typer.Typer(
    name="scim-token",
    help="SCIM tokens: one organization's SCIM client (Okta, Entra ID) on /scim/v2.",
    no_args_is_help=True,
)


@command(app, "create")
def scim_token_create(
    org: Annotated[str, typer.Option("--org", help="The organization the SCIM client feeds.")],
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "scim",
    as_json: JsonFlag = False,
) -> None:
    """Create a SCIM token and print it once (only its digest is stored)."""
    from accord.services import scim_tokens

    token, record = run_with_accord(lambda a: scim_tokens.create_scim_token(a, org, name=name))
    if as_json:
        print_json({"token": token, **record})
        return
    out().print(
        f"created SCIM token {record['id']} for organization {record['organization_id']}; "
        "it is shown once, paste it into the IdP's SCIM settings now:"
    )
    print(token)


@command(app, "list")
def scim_token_list(
    org: Annotated[str, typer.Option("--org", help="The organization.")],
    as_json: JsonFlag = False,
) -> None:
    """List an organization's SCIM tokens (revoked ones too; never their text)."""
    from accord.services import scim_tokens

    rows = run_with_accord(lambda a: scim_tokens.list_scim_tokens(a, org))
    if as_json:
        print_json(rows)
        return
    print_table(rows, ["id", "name", "created_at", "revoked_at"], "SCIM tokens")


@command(app, "revoke")
def scim_token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke a SCIM token at once (revoking it again is fine)."""
    from accord.services import scim_tokens

    run_with_accord(lambda a: scim_tokens.revoke_scim_token(a, token_id))
    if as_json:
        print_json({"id": token_id, "revoked": True})
    else:
        out().print(f"revoked SCIM token {token_id}")

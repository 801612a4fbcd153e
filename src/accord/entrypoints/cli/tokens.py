"""``accord tokens``: API tokens for the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from accord.entrypoints.cli.common import JsonFlag, command, out, print_json, run_with_accord

app = typer.Typer(name="tokens", help="API tokens for the HTTP API.", no_args_is_help=True)


@command(app, "create")
def tokens_create(
    platform: Annotated[
        bool, typer.Option("--platform", help="A token for every organization.")
    ] = False,
    org: Annotated[
        str | None, typer.Option("--org", help="A token for this organization only.")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "api token",
    as_json: JsonFlag = False,
) -> None:
    """Create an API token and print it once (only its digest is stored)."""
    from accord.domain.errors import InvalidInput
    from accord.services import tokens

    if platform == (org is not None):
        raise InvalidInput("Give exactly one of --platform and --org ORG_ID.")
    token, record = run_with_accord(
        lambda a: tokens.create_token(a, name=name, organization_id=org)
    )
    if as_json:
        print_json({"token": token, **record})
        return
    scope = "platform" if org is None else f"organization {org}"
    out().print(f"created API token {record['id']} ({scope}); it is shown once, store it now:")
    print(token)


@command(app, "revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke an API token at once (revoking it again is fine)."""
    from accord.services import tokens

    run_with_accord(lambda a: tokens.revoke_token(a, token_id))
    if as_json:
        print_json({"id": token_id, "revoked": True})
    else:
        out().print(f"revoked API token {token_id}")

"""API tokens and login tokens (services/tokens.py), and the CLI's argument checks."""

from __future__ import annotations

import base64
import json
from uuid import uuid4

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from accord.bootstrap import Accord
from accord.domain import errors
from accord.entrypoints.cli import app as cli
from accord.services import tokens
from tests.api.conftest import new_org


async def stored_rows(accord: Accord) -> list[dict]:
    async with accord.db.transaction() as conn:
        return [dict(r) for r in (await conn.execute(text("SELECT * FROM api_tokens"))).mappings()]


async def test_a_token_is_stored_only_as_its_digest(accord: Accord) -> None:
    token, record = await tokens.create_token(accord, name="  ci   runner ")
    assert token.startswith("acc_") and len(token) >= 40
    assert record["name"] == "ci runner" and record["scope"] == "platform"
    [row] = [r for r in await stored_rows(accord) if str(r["id"]) == record["id"]]
    assert row["digest"] != token and token not in json.dumps(row, default=str)
    caller = await tokens.authenticate(accord, token)
    assert caller.is_platform and caller.key == f"token:{record['id']}"


async def test_an_organization_token_is_scoped_to_an_existing_organization(
    accord: Accord,
) -> None:
    org = await new_org(accord, f"Acme {uuid4().hex}")
    token, record = await tokens.create_token(accord, name="acme", organization_id=str(org))
    caller = await tokens.authenticate(accord, token)
    assert not caller.is_platform and caller.organization_id == org
    assert record["organization_id"] == str(org)
    with pytest.raises(errors.OrganizationNotFound):
        await tokens.create_token(accord, name="x", organization_id=uuid4())
    with pytest.raises(errors.InvalidInput):
        await tokens.create_token(accord, name=" ")


async def test_unknown_and_revoked_tokens_are_unauthenticated(accord: Accord) -> None:
    token, record = await tokens.create_token(accord, name="t")
    for wrong in (None, "", "acc_nope", token[:-1], "x" + token, "acc_" + "a" * 300):
        with pytest.raises(errors.Unauthenticated):
            await tokens.authenticate(accord, wrong)
    await tokens.revoke_token(accord, record["id"])
    await tokens.revoke_token(accord, record["id"])  # again: fine
    with pytest.raises(errors.Unauthenticated):
        await tokens.authenticate(accord, token)
    with pytest.raises(tokens.ApiTokenNotFound):
        await tokens.revoke_token(accord, uuid4())


def _tamper(token: str, **claims: object) -> str:
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = base64.urlsafe_b64encode(json.dumps({**body, **claims}).encode()).decode()
    return ".".join([header, forged.rstrip("="), signature])


async def test_a_login_token_is_signed_and_expires(accord: Accord) -> None:
    user = {"id": str(uuid4()), "email": "a@example.com"}
    token, ttl = tokens.issue_login_token(accord, user)
    assert ttl == 900
    claims = tokens.verify_login_token(accord, token)
    assert claims["sub"] == user["id"] and claims["exp"] - claims["iat"] == 900
    expired, _ = tokens.issue_login_token(accord, user, ttl_seconds=-1)
    forged = _tamper(token, sub=str(uuid4()))
    for bad in (expired, forged, token + "x", "a.b", "", "x.y.z"):
        with pytest.raises(errors.Unauthenticated):
            tokens.verify_login_token(accord, bad)


def test_the_cli_wants_exactly_one_scope() -> None:
    runner = CliRunner()
    for args in (["--platform", "--org", "x"], []):
        result = runner.invoke(cli, ["tokens", "create", *args, "--json"])
        assert result.exit_code == 1
        assert json.loads(result.stdout)["code"] == "invalid_input"

"""``accord scim-token``: an operator makes an organization's SCIM token, sees it listed
(never its text), and revokes it; the token is stored only as a digest (G9)."""

import hashlib

from sqlalchemy import text

from accord.adapters.db.engine import sync_engine
from tests.e2e.conftest import run_accord


def _stored(database_url: str, token_id: str) -> tuple[str, str]:
    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT digest, scope FROM api_tokens WHERE id = :i"), {"i": token_id}
            ).one()
    finally:
        engine.dispose()
    return row.digest, row.scope


def test_create_list_revoke(cli_env: dict[str, str], database_url: str) -> None:
    org = run_accord("orgs", "create", "Scim Corp", "--json", env=cli_env).json()
    created = run_accord("scim-token", "create", "--org", org["id"], "--json", env=cli_env)
    assert created.code == 0, created.stderr
    token, token_id = created.json()["token"], created.json()["id"]
    assert token.startswith("scim_") and created.json()["scope"] == "scim"
    assert _stored(database_url, token_id) == (hashlib.sha256(token.encode()).hexdigest(), "scim")

    listed = run_accord("scim-token", "list", "--org", org["id"], "--json", env=cli_env)
    assert [t["id"] for t in listed.json()] == [token_id]
    assert token not in listed.stdout and listed.json()[0]["revoked_at"] is None

    assert run_accord("scim-token", "revoke", token_id, env=cli_env).code == 0
    again = run_accord("scim-token", "list", "--org", org["id"], "--json", env=cli_env)
    assert again.json()[0]["revoked_at"] is not None

    plain = run_accord("tokens", "create", "--org", org["id"], "--json", env=cli_env).json()
    refused = run_accord("scim-token", "revoke", plain["id"], env=cli_env)
    assert refused.code == 1 and "No SCIM token" in refused.stderr  # an API token is not one

"""``accord invitations create|list|resend|revoke`` in real processes against a real database."""

from __future__ import annotations

from uuid import uuid4

from tests.e2e.conftest import run_accord


def test_invite_list_resend_and_revoke(cli_env: dict[str, str]) -> None:
    org = run_accord("orgs", "create", "Acme", "--max-users", "1", "--json", env=cli_env)
    assert org.code == 0, org.stderr
    made = run_accord(
        "invitations", "create", "Grace@Example.com", "--org", "acme", "--role", "org_admin",
        "--json", env=cli_env,
    )  # fmt: skip
    assert made.code == 0, made.stderr
    invitation = made.json()
    assert invitation["email"] == "grace@example.com" and invitation["status"] == "pending"
    full = run_accord("invitations", "create", "ada@example.com", "--org", "acme", env=cli_env)
    assert full.code == 1 and "limit of 1" in full.stderr  # the invitation holds the only seat
    again = run_accord("invitations", "create", "grace@example.com", "--org", "acme", env=cli_env)
    assert again.code == 0 and again.stdout.startswith("already invited grace@example.com")
    listed = run_accord(
        "invitations", "list", "--org", "acme", "--status", "pending", "--json", env=cli_env
    )
    assert [i["id"] for i in listed.json()["items"]] == [invitation["id"]]
    resent = run_accord("invitations", "resend", invitation["id"], env=cli_env)
    assert resent.code == 0 and "sent a new link to grace@example.com" in resent.stdout
    revoked = run_accord("invitations", "revoke", invitation["id"], "--json", env=cli_env)
    assert revoked.code == 0 and revoked.json()["status"] == "revoked"
    table = run_accord("invitations", "list", "--org", "acme", env=cli_env)
    assert table.code == 0 and "revoked" in table.stdout
    bad = run_accord("invitations", "list", "--org", "acme", "--status", "lost", env=cli_env)
    assert bad.code == 1 and "--status must be one of" in bad.stderr
    missing = run_accord("invitations", "revoke", str(uuid4()), env=cli_env)
    assert missing.code == 1 and "invitation" in missing.stderr.lower()

"""``accord members``, ``accord orgs update`` and ``accord mail``, scripted as an operator would:
a user joins a second organization, the last admin stays, and the invitation mail that no SMTP
server was configured for is read from the embedded mailbox."""

from tests.e2e.conftest import run_accord


def test_members_orgs_update_and_the_mailbox(cli_env: dict[str, str]) -> None:
    a = run_accord("orgs", "create", "Alpha", "--json", env=cli_env).json()["id"]
    b = run_accord("orgs", "create", "Beta", "--max-users", "1", "--json", env=cli_env).json()["id"]
    created = run_accord(
        "users", "create", "ada@example.com", "--name", "Ada", "--org", a,
        "--role", "org_admin", "--json", env=cli_env,
    )  # fmt: skip
    assert created.code == 0, created.stderr
    ada = created.json()["user"]["id"]

    added = run_accord(
        "members", "set", "--org", b, "--user", ada, "--role", "org_admin",
        "--permission", "billing", "--json", env=cli_env,
    )  # fmt: skip
    assert added.code == 0, added.stderr
    assert added.json()["added"] is True and added.json()["permissions"] == ["billing"]
    listed = run_accord("members", "list", "--org", b, "--json", env=cli_env)
    assert [(m["email"], m["role"]) for m in listed.json()] == [("ada@example.com", "org_admin")]
    table = run_accord("members", "list", "--org", b, env=cli_env)
    assert table.code == 0 and "ada@example.com" in table.stdout

    last = run_accord(
        "members", "set", "--org", b, "--user", ada, "--role", "org_user", "--json", env=cli_env
    )  # its one member may leave Beta, but not stay in it as no one's administrator
    assert last.code == 1 and last.json()["code"] == "last_admin"
    below = run_accord("orgs", "update", a, "--max-users", "0", env=cli_env)
    assert below.code != 0
    renamed = run_accord(
        "orgs", "update", a, "--name", "Alpha Inc", "--max-users", "5", "--json", env=cli_env
    )
    assert renamed.code == 0, renamed.stderr
    assert (renamed.json()["display_name"], renamed.json()["max_users"]) == ("Alpha Inc", 5)

    sent = run_accord("worker", "--once", env=cli_env)
    assert sent.code == 0, sent.stderr
    mail = run_accord("mail", "list", "--to", "ada@example.com", "--json", env=cli_env)
    assert mail.code == 0, mail.stderr
    [message] = mail.json()
    [link] = message["links"]
    shown = run_accord("mail", "show", str(message["id"]), env=cli_env)
    assert shown.code == 0, shown.stderr
    assert f"Subject: {message['subject']}" in shown.stdout
    assert shown.stdout.count(link) == 2  # in the text, and under Links
    missing = run_accord("mail", "show", "999999", "--json", env=cli_env)
    assert missing.code == 1 and missing.json()["code"] == "mail_not_found"

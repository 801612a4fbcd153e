"""``accord users update``: an e-mail address and name changed as an operator would."""

from tests.e2e.conftest import run_accord


def test_users_update_changes_email_and_name_and_refuses_a_taken_address(
    cli_env: dict[str, str],
) -> None:
    org = run_accord("orgs", "create", "Acme Corp", "--json", env=cli_env).json()["id"]
    ids = []
    for email in ("ada@example.com", "bob@example.com"):
        made = run_accord(
            "users", "create", email, "--name", "Ada", "--org", org, "--json", env=cli_env
        )
        assert made.code == 0, made.stderr
        ids.append(made.json()["user"]["id"])
    changed = run_accord(
        "users",
        "update",
        ids[0],
        "--email",
        "Ada.King@Example.com",
        "--name",
        "Ada King",
        "--json",
        env=cli_env,
    )
    assert changed.code == 0, changed.stderr
    assert changed.json()["user"]["email"] == "ada.king@example.com"
    assert changed.json()["user"]["full_name"] == "Ada King"
    taken = run_accord("users", "update", ids[1], "--email", "ada.king@example.com", env=cli_env)
    assert taken.code == 1 and "email_exists" in taken.stderr
    listed = run_accord("users", "list", "--json", env=cli_env).json()
    assert sorted(u["email"] for u in listed) == ["ada.king@example.com", "bob@example.com"]

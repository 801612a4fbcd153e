"""The provisioning commands, scripted as an operator would."""

from tests.e2e.conftest import run_accord


def test_org_user_register_list_delete_round_trip(cli_env: dict[str, str]) -> None:
    org = run_accord("orgs", "create", "Acme Corp", "--max-users", "2", "--json", env=cli_env)
    assert org.code == 0, org.stderr
    org_id = org.json()["id"]
    assert org.json()["slug"] == "acme-corp"

    created = run_accord(
        "users",
        "create",
        "Ada@Example.com",
        "--name",
        "Ada",
        "--org",
        org_id,
        "--role",
        "org_admin",
        "--idempotency-key",
        "k1",
        "--json",
        env=cli_env,
    )
    assert created.code == 0, created.stderr
    body = created.json()
    assert body["user"]["email"] == "ada@example.com"
    assert body["reused_identity"] is False
    replay = run_accord(
        "users",
        "create",
        "Ada@Example.com",
        "--name",
        "Ada",
        "--org",
        org_id,
        "--role",
        "org_admin",
        "--idempotency-key",
        "k1",
        "--json",
        env=cli_env,
    )
    assert replay.json() == body

    dup = run_accord(
        "users",
        "create",
        "ada@example.com",
        "--name",
        "Ada",
        "--org",
        org_id,
        "--json",
        env=cli_env,
    )
    assert dup.code == 1
    assert dup.json()["code"] == "email_exists"

    plain = run_accord(
        "users", "create", "ada@example.com", "--name", "A", "--org", org_id, env=cli_env
    )
    assert plain.code == 1 and "email_exists" in plain.stderr and "Traceback" not in plain.stderr

    registered = run_accord(
        "register",
        "bob@example.com",
        "--password",
        "correct horse",
        "--name",
        "Bob",
        "--org-name",
        "Bob Co",
        "--source",
        "ide",
        "--json",
        env=cli_env,
    )
    assert registered.code == 0, registered.stderr
    assert registered.json()["organization"]["slug"] == "bob-co"

    listed = run_accord("users", "list", "--org", org_id, "--json", env=cli_env)
    assert [u["email"] for u in listed.json()] == ["ada@example.com"]

    deleted = run_accord("users", "delete", body["user"]["id"], env=cli_env)
    assert deleted.code == 0, deleted.stderr
    again = run_accord("users", "list", "--json", env=cli_env).json()
    # Deprovisioned: the row stays (history) with its address retired, free for a new person.
    assert {u["id"]: (u["email"], u["status"]) for u in again} == {
        body["user"]["id"]: (None, "disabled"),
        registered.json()["user"]["id"]: ("bob@example.com", "active"),
    }


def test_failures_are_one_line_or_json(cli_env: dict[str, str]) -> None:
    missing = run_accord(
        "users",
        "create",
        "x@example.com",
        "--name",
        "X",
        "--org",
        "00000000-0000-0000-0000-000000000000",
        "--json",
        env=cli_env,
    )
    assert missing.code == 1
    assert missing.json()["code"] == "organization_not_found"
    bad = run_accord("register", "nope", "--password", "pw12345678", "--name", "N", env=cli_env)
    assert bad.code == 1
    assert bad.stderr.count("\n") == 1 and "email_invalid" in bad.stderr


def test_orgs_delete_shows_first_and_offboards_with_yes(cli_env: dict[str, str]) -> None:
    org_id = run_accord("orgs", "create", "Leaving Co", "--json", env=cli_env).json()["id"]
    made = run_accord(
        "users", "create", "lee@example.com", "--name", "Lee", "--org", org_id, "--json",
        env=cli_env,
    )  # fmt: skip
    assert made.code == 0, made.stderr

    preview = run_accord("orgs", "delete", org_id, "--json", env=cli_env)
    assert preview.code == 0, preview.stderr
    assert preview.json()["would_delete"]["members"] == 1
    assert run_accord("orgs", "list", "--json", env=cli_env).json() != []  # nothing changed

    done = run_accord("orgs", "delete", org_id, "--yes", "--json", env=cli_env)
    assert done.code == 0, done.stderr
    assert (done.json()["members_removed"], done.json()["users_deprovisioned"]) == (1, 1)
    again = run_accord("orgs", "delete", org_id, "--yes", "--json", env=cli_env)
    assert again.code == 1 and again.json()["code"] == "organization_not_found"

"""``accord scim-group``: an operator maps a group name to a role and permissions before the
IdP pushes the group, sees the grant listed, and removes it; a role that does not exist and a
grant that is not there are refused with what to do."""

from tests.e2e.conftest import run_accord


def test_map_list_unmap(cli_env: dict[str, str]) -> None:
    org = run_accord("orgs", "create", "Groups Corp", "--json", env=cli_env).json()
    where = ("--org", org["id"], "--group", "Admins")
    mapped = run_accord(
        "scim-group",
        "map",
        *where,
        "--role",
        "org_admin",
        "--permission",
        "billing",
        "--json",
        env=cli_env,
    )
    assert mapped.code == 0, mapped.stderr
    assert mapped.json() == {
        "organization_id": org["id"],
        "group": "Admins",
        "role": "org_admin",
        "permissions": ["billing"],
    }
    listed = run_accord("scim-group", "list", "--org", org["id"], "--json", env=cli_env)
    assert [(g["group"], g["role"]) for g in listed.json()] == [("Admins", "org_admin")]

    wrong = run_accord("scim-group", "map", *where, "--role", "owner", env=cli_env)
    assert wrong.code == 1 and "org_admin or org_user" in wrong.stderr

    assert run_accord("scim-group", "unmap", *where, env=cli_env).code == 0
    assert run_accord("scim-group", "list", "--org", org["id"], "--json", env=cli_env).json() == []
    again = run_accord("scim-group", "unmap", *where, env=cli_env)
    assert again.code == 1 and "No grant" in again.stderr

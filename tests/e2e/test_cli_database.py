"""`accord db ...` and the read commands, as a person runs them."""

from pathlib import Path

from accord.adapters.db import migrate
from tests.e2e.conftest import run_accord


def test_db_upgrade_on_a_configured_server_twice(empty_database_url: str, tmp_path: Path) -> None:
    env = {"ACCORD_DATABASE_URL": empty_database_url, "ACCORD_DATA_DIR": str(tmp_path)}
    first = run_accord("db", "upgrade", env=env)
    second = run_accord("db", "upgrade", env=env)
    assert first.code == 0 and second.code == 0, first.stderr + second.stderr
    assert f"revision {migrate.head_revision()}" in second.stderr
    listed = run_accord("users", "list", "--json", env=env)
    assert listed.code == 0 and listed.json() == []


def test_db_url_hides_the_password(tmp_path: Path) -> None:
    env = {"ACCORD_DATABASE_URL": "postgresql://app:s3cret@db.internal:5432/accord"}
    result = run_accord("db", "url", env=env)
    assert result.code == 0
    assert "s3cret" not in result.stdout + result.stderr
    assert "app:***@db.internal:5432/accord" in result.stdout


def test_embedded_database_with_no_configuration(tmp_path: Path) -> None:
    env = {"ACCORD_DATA_DIR": str(tmp_path / "data")}
    first = run_accord("db", "upgrade", env=env, timeout=180)
    assert first.code == 0, first.stderr
    assert f"embedded PostgreSQL in {tmp_path / 'data' / 'postgres'}" in first.stderr
    # The next start reuses the same cluster: the schema is already there.
    again = run_accord("orgs", "list", "--json", env=env, timeout=180)
    assert again.code == 0, again.stderr
    assert again.json() == []


def test_unreachable_database_is_one_readable_line(tmp_path: Path) -> None:
    env = {"ACCORD_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"}
    result = run_accord("users", "list", "--json", env=env)
    assert result.code == 1
    assert result.json()["code"] == "database_unavailable"
    assert "Traceback" not in result.stderr


def test_bad_organization_id_is_reported(cli_env: dict[str, str]) -> None:
    result = run_accord("users", "list", "--org", "not-a-uuid", env=cli_env)
    assert result.code == 1
    assert "must be a UUID" in result.stderr
    assert "Traceback" not in result.stderr

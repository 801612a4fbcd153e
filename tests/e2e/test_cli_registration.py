"""`accord register` proves the e-mail like the web form, unless an operator vouches for it."""

from __future__ import annotations

from tests.e2e.conftest import run_accord


def test_register_mails_a_link_unless_the_operator_vouches(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "ACCORD_REGISTRATION__VERIFY_EMAIL": "true"}  # the default
    args = ("--password", "correct horse", "--name", "Vera", "--json")
    sent = run_accord("register", "vera@example.com", *args, env=env)
    assert sent.code == 0, sent.stderr
    assert sent.json() == {"status": "verification_sent"}
    assert run_accord("users", "list", "--json", env=env).json() == []  # not before the link

    vouched = run_accord("register", "vera@example.com", *args, "--verified", env=env)
    assert vouched.code == 0, vouched.stderr
    assert vouched.json()["user"]["status"] == "active"
    assert vouched.json()["organization"]["kind"] == "personal"

"""``accord events tail``: the feed as an operator reads it; ``--follow`` keeps reading new
events as they commit and stops cleanly on Ctrl-C, naming the cursor to resume from."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from tests.e2e.conftest import run_accord
from tests.patience import PATIENCE


def test_tail_prints_the_feed_and_filters_by_type(cli_env: dict[str, str]) -> None:
    org = run_accord("orgs", "create", "Alpha", "--json", env=cli_env).json()["id"]
    made = run_accord(
        "users", "create", "ada@example.com", "--name", "Ada", "--org", org, "--json", env=cli_env
    )
    assert made.code == 0, made.stderr
    tail = run_accord("events", "tail", "--json", env=cli_env)
    assert tail.code == 0, tail.stderr
    events = [json.loads(line) for line in tail.stdout.splitlines()]
    assert [e["type"] for e in events] == [
        "organization.created",
        "user.created",
        "membership.added",
    ]
    assert [e["sequence"] for e in events] == [1, 2, 3]
    only = run_accord("events", "tail", "--type", "user.created", env=cli_env)
    assert only.code == 0 and "user.created" in only.stdout
    assert "organization.created" not in only.stdout
    wrong = run_accord("events", "tail", "--type", "user.eaten", "--json", env=cli_env)
    assert wrong.code == 1 and wrong.json()["code"] == "invalid_input"


def test_follow_sees_new_events_and_stops_cleanly_on_ctrl_c(cli_env: dict[str, str]) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    command = [sys.executable, "-m", "accord", "events", "tail", "--follow", "--json"]
    with subprocess.Popen(
        [*command, "--interval", "0.1"],
        env={**base, **cli_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as follower:
        try:
            made = run_accord("orgs", "create", "Beta", "--json", env=cli_env)
            assert made.code == 0, made.stderr
            line = follower.stdout.readline()  # blocks until the follower printed the event
            assert json.loads(line)["type"] == "organization.created"
            follower.send_signal(signal.SIGINT)
            code = follower.wait(timeout=PATIENCE)
            said = follower.stderr.read()
            assert code == 0, said
            assert "resume with --after 1" in said and "Traceback" not in said
        finally:
            if follower.poll() is None:
                follower.kill()

"""``accord webhooks add|list|test|replay|remove`` against a real receiver on loopback: the
secret is printed once, ``test`` sends a message the receiver verifies with
``standardwebhooks``, the worker delivers, ``replay`` delivers the same events again (same
``webhook-id``), and ``remove`` stops it all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import run_accord
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(failure_percent=0)
    found.up()
    yield found
    found.down()


def test_the_webhook_commands_register_test_replay_and_remove(
    cli_env: dict[str, str], receiver: Receiver
) -> None:
    env = {**cli_env, "ACCORD_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true"}
    refused = run_accord("webhooks", "add", "http://127.0.0.1:1/x", "--json", env=cli_env)
    assert refused.code == 1 and refused.json()["code"] == "webhook_target_refused"

    added = run_accord("webhooks", "add", f"{receiver.url}/", "--json", env=env)
    assert added.code == 0, added.stderr
    hook = added.json()
    receiver.secrets["/"] = hook["secret"]
    listed = run_accord("webhooks", "list", "--json", env=env).json()
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]

    tested = run_accord("webhooks", "test", hook["id"], "--json", env=env)
    assert tested.code == 0 and tested.json()["ok"] is True, tested.stdout + tested.stderr
    assert receiver.log[-1].verified and receiver.log[-1].body["type"] == "webhook.test"

    assert run_accord("orgs", "create", "Hooked", "--json", env=env).code == 0
    assert run_accord("worker", "--once", env=env).code == 0
    delivered = receiver.succeeded("/") - {receiver.log[0].webhook_id}
    assert len(delivered) == 1  # organization.created
    replay = run_accord("webhooks", "replay", hook["id"], "--after", "0", "--json", env=env)
    assert replay.code == 0, replay.stderr
    assert run_accord("worker", "--once", env=env).code == 0
    assert Counter(r.webhook_id for r in receiver.log)[next(iter(delivered))] == 2
    assert receiver.verified_all()

    assert run_accord("webhooks", "remove", hook["id"], env=env).code == 0
    assert run_accord("webhooks", "list", "--json", env=env).json() == []
    missing = run_accord("webhooks", "test", hook["id"], "--json", env=env)
    assert missing.code == 1 and missing.json()["code"] == "webhook_not_found"

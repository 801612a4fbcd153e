"""Webhooks reach a real, unreliable receiver at least once, signed, in per-subject order.

The receiver (``receiver.py``) listens on loopback, answers about 30 % of requests with 500, the
first few with 429 and ``Retry-After``, is down for a stretch, and verifies every request with
``standardwebhooks`` as a consumer would. Time passes by moving ``next_attempt_at`` (and, after
a crash, the lease) into the past in the database: nothing sleeps to wait for a schedule.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import text

from accord.adapters.sealing import new_key_text
from accord.bootstrap import Accord, build_mailer
from accord.config import Settings, WebhookSettings
from accord.domain import errors
from accord.domain.webhooks import PER_ENDPOINT_IN_FLIGHT
from accord.services import organizations, webhooks, worker
from tests.api.conftest import PLATFORM
from tests.webhooks.receiver import Receiver

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key=new_key_text(),
        idp="local",
        webhooks=WebhookSettings(allow_private_targets=True),
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.up()
    yield found
    found.down()


async def sql(accord: Accord, statement: str, **params: object) -> list:
    async with accord.db.engine.begin() as conn:
        result = await conn.execute(text(statement), params)
        return list(result) if result.returns_rows else []


async def time_passes(accord: Accord) -> None:
    """Every pending delivery's next attempt, and every lease, is now."""
    await sql(
        accord,
        "UPDATE webhook_deliveries SET next_attempt_at = now(), "
        "leased_until = CASE WHEN leased_until IS NULL THEN NULL ELSE now() - interval '1 s' END "
        "WHERE status = 'pending'",
    )


async def settle(accord: Accord, *, max_passes: int = 60) -> None:
    """Work, letting time pass, until no enabled endpoint has a pending delivery."""
    mailer = build_mailer(accord.settings, accord.store)
    for _ in range(max_passes):
        await worker.run_once(accord, mailer, housekeep=False)
        left = await sql(
            accord,
            "SELECT count(*) FROM webhook_deliveries d JOIN webhook_endpoints e "
            "ON e.id = d.endpoint_id WHERE e.enabled AND d.status = 'pending'",
        )
        if left[0][0] == 0:
            return
        await time_passes(accord)
    raise AssertionError("deliveries did not settle")


async def changes(accord: Accord, tag: str, orgs: list[str], rounds: int) -> None:
    """Organizations created (when ``orgs`` is empty) and renamed ``rounds`` times each."""
    if not orgs:
        for n in range(6):
            made = await organizations.create_organization(
                accord, organizations.NewOrganization(name=f"Hook {tag} {n}"), caller=PLATFORM
            )
            orgs.append(made["id"])
        with pytest.raises(errors.OrganizationNotFound):  # a failed change: no event
            await organizations.update_organization(
                accord,
                uuid4(),
                organizations.OrganizationUpdate(display_name="nobody"),
                caller=PLATFORM,
            )
    for r in range(rounds):
        for org in orgs:
            await organizations.update_organization(
                accord,
                org,
                organizations.OrganizationUpdate(
                    display_name=f"{tag} {org[:4]} r{r} {uuid4().hex[:4]}"
                ),
                caller=PLATFORM,
            )


async def feed_ids(accord: Accord) -> set[str]:
    return {str(row.id) for row in await sql(accord, "SELECT id FROM change_events")}


def assert_subject_order(receiver: Receiver, path: str = "/") -> None:
    """Per subject, the versions the receiver saw never go down (retries included)."""
    versions: dict[str, list[int]] = defaultdict(list)
    for got in receiver.log:
        if got.path == path and got.body is not None:
            versions[got.body["data"]["subject"]["id"]].append(got.body["data"]["version"])
    assert versions
    for subject, seen in versions.items():
        assert seen == sorted(seen), (subject, seen)


async def test_every_event_reaches_an_unreliable_receiver_signed_and_in_order(
    accord: Accord, receiver: Receiver
) -> None:
    tag = uuid4().hex[:6]
    main, secret = await webhooks.create_endpoint(accord, PLATFORM, url=f"{receiver.url}/")
    gone, gone_secret = await webhooks.create_endpoint(accord, PLATFORM, url=f"{receiver.url}/gone")
    receiver.secrets.update({"/": secret, "/gone": gone_secret})
    receiver.gone.add("/gone")  # answers 410: the endpoint is disabled at once
    orgs: list[str] = []
    await changes(accord, tag, orgs, rounds=1)

    # Down for a stretch: two passes of refused connections.
    port = receiver.port
    receiver.down()
    mailer = build_mailer(accord.settings, accord.store)
    for _ in range(2):
        await worker.run_once(accord, mailer, housekeep=False)
        await time_passes(accord)
    refused = await sql(
        accord, "SELECT count(*) FROM webhook_deliveries WHERE last_error LIKE 'Connect%'"
    )
    assert refused[0][0] > 0
    receiver.port = port
    receiver.throttle = 3
    receiver.up()

    # 429 with Retry-After: 120 s at least before the next attempt, whatever the schedule says.
    await worker.run_once(accord, mailer, housekeep=False)
    throttled = await sql(
        accord,
        "SELECT extract(epoch FROM next_attempt_at - now()) FROM webhook_deliveries "
        "WHERE last_status = 429 AND status = 'pending'",
    )
    assert throttled and all(wait >= 110 for (wait,) in throttled), throttled
    await settle(accord)
    to_gone = [r.answered for r in receiver.log if r.path == "/gone"]
    await changes(accord, tag, orgs, rounds=2)  # after the 410: none may reach /gone
    await settle(accord)

    assert receiver.verified_all(), "a signature did not verify with standardwebhooks"
    events = await feed_ids(accord)
    assert receiver.succeeded("/") == events  # every event, at least once
    per_id = Counter(r.webhook_id for r in receiver.log if r.path == "/")
    assert max(per_id.values()) > 1, "no retries happened: the test proves nothing"
    bodies: dict[str, set[str]] = defaultdict(set)
    for got in receiver.log:
        if got.path == "/":
            bodies[got.webhook_id].add(receiver.dumps(got.body))
    assert all(len(b) == 1 for b in bodies.values()), "a retry changed the message"
    assert_subject_order(receiver)
    created = [b for b in receiver.bodies() if b["type"] == "organization.created"]
    assert len({b["data"]["id"] for b in created}) == 6
    assert len(events) == 6 * 4  # created, renamed three times; the failed change wrote none

    # The first attempts went out together (different subjects in parallel, bounded per
    # endpoint); after the 410 was recorded, nothing more.
    assert set(to_gone) == {410} and len(to_gone) <= PER_ENDPOINT_IN_FLIGHT
    assert [r.answered for r in receiver.log if r.path == "/gone"] == to_gone
    state = await webhooks.get_endpoint(accord, PLATFORM, gone.id)
    assert not state.enabled and "410" in (state.disabled_reason or "")
    audited = await sql(
        accord, "SELECT count(*) FROM audit_events WHERE action = 'webhook.disabled'"
    )
    assert audited[0][0] == 1
    shown = await webhooks.list_deliveries(accord, PLATFORM, main.id, limit=200)
    assert {d.status for d in shown} == {"succeeded"} and any(d.attempts > 1 for d in shown)


async def test_a_worker_killed_mid_delivery_redelivers_with_the_same_webhook_id(
    accord: Accord, receiver: Receiver, settings: Settings
) -> None:
    tag = uuid4().hex[:6]
    _, secret = await webhooks.create_endpoint(accord, PLATFORM, url=f"{receiver.url}/")
    receiver.secrets["/"] = secret
    receiver.failure_percent = 0
    orgs: list[str] = []
    await changes(accord, tag, orgs, rounds=1)

    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    env.update(
        ACCORD_DATABASE_URL=settings.database_url.get_secret_value(),
        ACCORD_DATA_DIR=str(settings.data_dir),
        ACCORD_SECRET_KEY=settings.secret_key.get_secret_value(),
        ACCORD_IDP="local",
        ACCORD_WEBHOOKS__ALLOW_PRIVATE_TARGETS="true",
        ACCORD_CRASH_AT="webhook_sent",  # the receiver answered; the worker has not recorded it
    )
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "accord", "worker", "--once"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr
    before_crash = receiver.succeeded("/")
    assert before_crash, "the worker died before any delivery"
    leased = await sql(accord, "SELECT count(*) FROM webhook_deliveries WHERE leased_until > now()")
    assert leased[0][0] > 0  # the dead worker's leases

    await time_passes(accord)  # its leases run out
    await settle(accord)
    assert receiver.verified_all()
    assert receiver.succeeded("/") == await feed_ids(accord)
    again = Counter(r.webhook_id for r in receiver.log)
    assert all(again[i] >= 2 for i in before_crash), "a delivery the crash lost was not redone"
    assert_subject_order(receiver)


async def test_an_endpoint_failing_for_five_days_is_disabled_audited_and_mailed(
    accord: Accord, receiver: Receiver
) -> None:
    admin = f"ops-{uuid4().hex[:6]}@example.com"
    await sql(
        accord,
        "INSERT INTO users (id, email, full_name, status, is_platform_admin) "
        "VALUES (:id, :email, 'Ops', 'active', true)",
        id=uuid4(),
        email=admin,
    )
    endpoint, secret = await webhooks.create_endpoint(accord, PLATFORM, url=f"{receiver.url}/")
    receiver.secrets["/"] = secret
    receiver.failure_percent = 100
    await changes(accord, uuid4().hex[:6], [], rounds=0)
    mailer = build_mailer(accord.settings, accord.store)
    await worker.run_once(accord, mailer, housekeep=False)
    assert (await webhooks.get_endpoint(accord, PLATFORM, endpoint.id)).failing_since
    # Five days of failures pass (the schedule would still retry: it is the endpoint that goes).
    await sql(
        accord,
        "UPDATE webhook_endpoints SET failing_since = now() - interval '5 days 1 minute'",
    )
    await time_passes(accord)
    await worker.run_once(accord, mailer, housekeep=False)

    state = await webhooks.get_endpoint(accord, PLATFORM, endpoint.id)
    assert not state.enabled and "5 days" in (state.disabled_reason or "")
    audited = await sql(
        accord, "SELECT count(*) FROM audit_events WHERE action = 'webhook.disabled'"
    )
    assert audited[0][0] == 1
    mailed = await sql(accord, "SELECT recipient FROM outbox WHERE kind = 'webhook_disabled'")
    assert [row.recipient for row in mailed] == [admin]
    sent = len(receiver.log)
    await time_passes(accord)
    await worker.run_once(accord, mailer, housekeep=False)
    assert len(receiver.log) == sent  # disabled: nothing more goes out
    delivered = await sql(accord, "SELECT sent_at FROM outbox WHERE kind = 'webhook_disabled'")
    assert delivered[0].sent_at is not None  # the worker mailed it


async def test_after_a_rotation_both_secrets_verify_for_a_day_then_only_the_new_one(
    accord: Accord, receiver: Receiver
) -> None:
    endpoint, old = await webhooks.create_endpoint(accord, PLATFORM, url=f"{receiver.url}/")
    _, new = await webhooks.rotate_secret(accord, PLATFORM, endpoint.id)
    receiver.failure_percent = 0
    for secret in (old, new):  # a receiver that has not switched yet, and one that has
        receiver.secrets["/"] = secret
        assert (await webhooks.send_test(accord, PLATFORM, endpoint.id))["ok"]
    assert len(receiver.log[-1].webhook_id) > 0 and receiver.verified_all()

    real = accord.clock

    class DayLater:
        def now(self) -> datetime:
            return real.now() + timedelta(hours=24, minutes=1)

    accord.clock = DayLater()
    try:
        receiver.secrets["/"] = old
        assert not (await webhooks.send_test(accord, PLATFORM, endpoint.id))["ok"]
        receiver.secrets["/"] = new
        assert (await webhooks.send_test(accord, PLATFORM, endpoint.id))["ok"]
    finally:
        accord.clock = real
    assert [r.verified for r in receiver.log] == [True, True, False, True]

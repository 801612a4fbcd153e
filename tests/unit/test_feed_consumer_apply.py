"""The consumer example applies an event only if it is newer than what it holds (no server)."""

from __future__ import annotations

import sqlite3
from typing import Any

from tests.examples import load

feed_consumer = load("feed_consumer")
ADA, ACME = "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-0000000000ac"


def user(version: int, data: dict[str, Any] | None) -> dict[str, Any]:
    return {"subject": {"type": "user", "id": ADA}, "version": version, "data": data}


def ada(name: str, status: str = "active", email: str | None = "ada@example.com") -> dict:
    return {"id": ADA, "email": email, "full_name": name, "status": status, "organizations": []}


def membership(version: int, role: str | None) -> dict[str, Any]:
    data = None if role is None else {"user_id": ADA, "organization_id": ACME, "role": role}
    return {
        "subject": {"type": "membership", "id": f"{ADA}:{ACME}"},
        "version": version,
        "data": data,
    }


def rows(db: sqlite3.Connection) -> tuple[list[tuple], list[tuple]]:
    return (
        list(db.execute("SELECT * FROM users")),
        list(db.execute("SELECT * FROM memberships")),
    )


def test_an_older_or_repeated_event_changes_nothing() -> None:
    db = feed_consumer.open_db(":memory:")
    assert feed_consumer.apply(db, user(1, ada("Ada")))
    assert feed_consumer.apply(db, user(3, ada("Ada L.")))
    assert not feed_consumer.apply(db, user(2, ada("Ada (older)")))
    assert not feed_consumer.apply(db, user(3, ada("Ada L.")))
    assert rows(db)[0] == [(ADA, "ada@example.com", "Ada L.", "active")]


def test_a_removed_subject_stays_removed_against_older_events() -> None:
    db = feed_consumer.open_db(":memory:")
    feed_consumer.apply(db, membership(1, "org_user"))
    feed_consumer.apply(db, membership(2, None))  # membership.removed
    assert not feed_consumer.apply(db, membership(1, "org_user"))  # redelivered late
    assert rows(db)[1] == []
    feed_consumer.apply(db, membership(3, "org_admin"))  # added again: its version grew
    assert rows(db)[1] == [(ADA, ACME, "org_admin")]


def test_a_deprovisioned_user_stays_disabled_and_a_deleted_row_goes() -> None:
    db = feed_consumer.open_db(":memory:")
    feed_consumer.apply(db, user(1, ada("Ada")))
    feed_consumer.apply(db, user(2, ada("Ada", status="disabled", email=None)))
    assert rows(db)[0] == [(ADA, None, "Ada", "disabled")]
    feed_consumer.apply(db, user(3, None))  # the row is gone (a repair removed it)
    assert rows(db)[0] == []


def test_organizations_and_invitations_are_not_kept() -> None:
    db = feed_consumer.open_db(":memory:")
    event = {"subject": {"type": "organization", "id": ACME}, "version": 1, "data": {}}
    assert not feed_consumer.apply(db, event)

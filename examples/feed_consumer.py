"""Keep a copy of accord's users and memberships from its change feed (``GET /api/events``).

    python examples/feed_consumer.py --url http://127.0.0.1:8000 --token T --db copy.sqlite [--once]

Each page of events is applied in one SQLite transaction together with the cursor that follows
it, so a crash between two pages re-reads at most the page it was on. An event is applied only
if its ``version`` is newer than the one held for its subject (``versions``; kept for removed
subjects too), so an event read twice, or an older one arriving after a newer one, changes
nothing. Every event carries the subject's whole current document, so applying the newest one
is enough: nothing is merged.

What the copy holds is what accord's API shows: ``users`` as ``GET /api/admin/users`` lists them
(a deprovisioned user stays, with ``status`` ``disabled`` and no e-mail; a user row accord
removes, ``data: null``, is deleted), and ``memberships`` as the users' ``organizations`` (a
removed membership, ``data: null``, is deleted).
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from typing import Any

import httpx

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, email TEXT, full_name TEXT NOT NULL, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memberships (
    user_id TEXT NOT NULL, organization_id TEXT NOT NULL, role TEXT NOT NULL,
    PRIMARY KEY (user_id, organization_id));
CREATE TABLE IF NOT EXISTS versions (
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (subject_type, subject_id));
CREATE TABLE IF NOT EXISTS feed_cursor (one INTEGER PRIMARY KEY CHECK (one = 1), cursor TEXT);
"""


def open_db(path: str) -> sqlite3.Connection:
    """The consumer's database, with its tables."""
    db = sqlite3.connect(path, isolation_level=None)  # transactions are explicit (BEGIN)
    db.executescript(SCHEMA)
    return db


def apply(db: sqlite3.Connection, event: dict[str, Any]) -> bool:
    """Apply one event if it is newer than what the copy holds for its subject."""
    kind, subject_id, data = event["subject"]["type"], event["subject"]["id"], event["data"]
    if kind not in ("user", "membership"):
        return False  # organizations and invitations: not kept in this copy
    held = db.execute(
        "SELECT version FROM versions WHERE subject_type = ? AND subject_id = ?", (kind, subject_id)
    ).fetchone()
    if held is not None and held[0] >= event["version"]:
        return False  # redelivered, or older than what we have
    db.execute(
        "INSERT INTO versions VALUES (?, ?, ?) "
        "ON CONFLICT (subject_type, subject_id) DO UPDATE SET version = excluded.version",
        (kind, subject_id, event["version"]),
    )
    if kind == "user":
        db.execute("DELETE FROM users WHERE id = ?", (subject_id,))
        if data is not None:
            row = (data["id"], data["email"], data["full_name"], data["status"])
            db.execute("INSERT INTO users VALUES (?, ?, ?, ?)", row)
    else:
        user_id, organization_id = subject_id.split(":")
        db.execute(
            "DELETE FROM memberships WHERE user_id = ? AND organization_id = ?",
            (user_id, organization_id),
        )
        if data is not None:
            db.execute(
                "INSERT INTO memberships VALUES (?, ?, ?)", (user_id, organization_id, data["role"])
            )
    return True


def sync(client: httpx.Client, db: sqlite3.Connection, page_size: int = 200) -> int:
    """Read the feed from the stored cursor to its end; how many events were read."""
    read = 0
    while True:
        row = db.execute("SELECT cursor FROM feed_cursor").fetchone()
        params = {"limit": page_size} | ({"after": row[0]} if row else {})
        answer = client.get("/api/events", params=params)
        answer.raise_for_status()  # 410 cursor_expired: start again from a full copy
        page = answer.json()
        db.execute("BEGIN")
        try:
            for event in page["items"]:
                apply(db, event)
            db.execute(
                "INSERT INTO feed_cursor VALUES (1, ?) "
                "ON CONFLICT (one) DO UPDATE SET cursor = excluded.cursor",
                (page["next_cursor"],),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        read += len(page["items"])
        if not page["has_more"]:
            return read


def main() -> None:
    parser = argparse.ArgumentParser(description="Keep a copy of accord's users and memberships.")
    parser.add_argument("--url", required=True, help="accord's base URL")
    parser.add_argument("--token", required=True, help="an API token (platform or organization)")
    parser.add_argument("--db", required=True, help="the SQLite file of the copy")
    parser.add_argument("--once", action="store_true", help="read to the end once, then stop")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    args = parser.parse_args()
    db = open_db(args.db)
    headers = {"Authorization": f"Bearer {args.token}"}
    with httpx.Client(base_url=args.url, headers=headers, timeout=30) as client:
        while True:
            read = sync(client, db)
            print(f"{read} events read")
            if args.once:
                return
            time.sleep(args.interval)


if __name__ == "__main__":
    main()

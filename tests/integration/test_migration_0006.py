"""Revision 0006 re-folds stored e-mails (NFKC, then case folding): a lone variant is re-spelled,
and two rows that would become one address stop the upgrade, changing nothing, naming both."""

from __future__ import annotations

from uuid import uuid4

import pytest
from sqlalchemy import text

from accord.adapters.db import migrate
from accord.adapters.db.engine import sync_engine


def _run(url: str, sql: str, **params: object) -> list:
    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def _user(url: str, email: str) -> None:
    _run(
        url,
        "INSERT INTO users (id, email, full_name, status) VALUES (:i, :e, 'X', 'active')",
        i=uuid4(),
        e=email,
    )


def test_a_lone_variant_is_respelled(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url, "0003")
    _user(empty_database_url, "\uff41dmin@example.com")  # full-width a
    _user(empty_database_url, "\ufb01le@example.com")  # the fi ligature
    migrate.upgrade(empty_database_url)
    emails = {r.email for r in _run(empty_database_url, "SELECT email FROM users")}
    assert emails == {"admin@example.com", "file@example.com"}


def test_a_collision_stops_the_upgrade_and_names_both(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url, "0003")
    _user(empty_database_url, "admin@example.com")
    _user(empty_database_url, "\uff41dmin@example.com")
    with pytest.raises(RuntimeError, match="would fold to one spelling") as caught:
        migrate.upgrade(empty_database_url)
    assert "\\uff41dmin@example.com" in str(caught.value) or "\uff41dmin" in str(caught.value)
    assert migrate.current_revision(empty_database_url) == "0003"
    emails = {r.email for r in _run(empty_database_url, "SELECT email FROM users")}
    assert emails == {"admin@example.com", "\uff41dmin@example.com"}

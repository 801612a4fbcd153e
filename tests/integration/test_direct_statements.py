"""Statements run on psycopg directly (``adapters/db/direct.py``) mean what they meant through
SQLAlchemy: the same rows back, the same values stored, the same domain errors. A statement
that needs what only SQLAlchemy does (an expanded IN list, a default computed in Python, a
converted result) is refused before it runs, not run wrong."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import (
    ARRAY,
    Column,
    Integer,
    MetaData,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    any_,
    bindparam,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from accord.adapters.db.database import Database
from accord.adapters.db.direct import Direct
from accord.adapters.db.engine import async_engine
from accord.adapters.db.errors import ConstraintViolated

metadata = MetaData()
things = Table(
    "direct_things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("doc", JSONB, nullable=True),
    UniqueConstraint("name", name="uq_direct_things_name"),
)


class Shouted(TypeDecorator[str]):
    """A type whose results SQLAlchemy converts: psycopg alone would return them unconverted."""

    impl = Text
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        return value.upper() if value is not None else None


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    db = Database(async_engine(database_url))
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield db
    finally:
        await db.dispose()


_INSERT = Direct(insert(things).returning(*things.c))
_BY_NAMES = Direct(
    select(things).where(things.c.name == any_(bindparam("names", type_=ARRAY(Text))))
)


async def test_an_insert_stores_and_returns_what_sqlalchemy_stores_and_returns(
    db: Database,
) -> None:
    values = {"doc": None}
    async with db.transaction() as conn:
        direct = await _INSERT.first(conn, {"id": 1, "name": "direct", **values})
        through = (
            await conn.execute(
                insert(things).returning(*things.c), {"id": 2, "name": "sa", **values}
            )
        ).one()
        stored = (
            await conn.execute(
                text("SELECT id, doc IS NULL, jsonb_typeof(doc) FROM direct_things ORDER BY id")
            )
        ).all()
    assert direct == {**dict(through._mapping), "id": 1, "name": "direct"}
    # A JSON None is JSON null either way (SQLAlchemy's none_as_null=False), never SQL NULL.
    assert [tuple(row) for row in stored] == [(1, False, "null"), (2, False, "null")]


async def test_an_array_parameter_matches_any_of_its_values(db: Database) -> None:
    async with db.transaction() as conn:
        for number, name in enumerate(["ann", "bob", "cy"]):
            await _INSERT.run(conn, {"id": number, "name": name, "doc": {"n": number}})
        found = await _BY_NAMES.rows(conn, {"names": ["cy", "ann", "nobody"]})
        none = await _BY_NAMES.rows(conn, {"names": []})
    assert sorted((row["name"], row["doc"]) for row in found) == [
        ("ann", {"n": 0}),
        ("cy", {"n": 2}),
    ]
    assert none == []


async def test_a_violated_constraint_is_reported_by_its_name(db: Database) -> None:
    row = {"id": 1, "name": "same", "doc": None}
    async with db.transaction() as conn:
        await _INSERT.run(conn, row)
    with pytest.raises(ConstraintViolated) as raised:
        async with db.transaction() as conn:
            await _INSERT.run(conn, {**row, "id": 2})
    assert raised.value.constraint == "uq_direct_things_name"
    async with db.transaction() as conn:  # the failed transaction left its connection usable
        assert await Direct(select(things.c.id)).scalar(conn, {}) == 1


async def test_a_statement_of_its_own_commits_as_it_runs_and_leaves_its_connection_as_it_was(
    db: Database, database_url: str
) -> None:
    async with db.statement() as conn:
        await _INSERT.run(conn, {"id": 1, "name": "ann", "doc": None})
        with psycopg.connect(database_url) as other:  # committed before the block ends
            assert other.execute("SELECT name FROM direct_things").fetchall() == [("ann",)]
    with pytest.raises(RuntimeError):  # the pool's one connection, in a transaction again
        async with db.transaction() as conn:
            await _INSERT.run(conn, {"id": 2, "name": "bo", "doc": None})
            raise RuntimeError("rolled back")
    async with db.statement() as conn:
        assert await Direct(select(things.c.name)).scalar(conn, {}) == "ann"


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        (select(things).where(things.c.name.in_(bindparam("names", expanding=True))), "expanded"),
        (insert(Table("t", MetaData(), Column("n", Integer, default=lambda: 1))), "defaults"),
        (select(Table("t", MetaData(), Column("n", Shouted)).c.n), "convert"),
    ],
    ids=["expanding IN", "python default", "converted result"],
)
async def test_a_statement_that_needs_sqlalchemy_is_refused_before_it_runs(
    db: Database, statement: Any, refusal: str
) -> None:
    async with db.transaction() as conn:
        with pytest.raises(TypeError, match=refusal):
            await Direct(statement).rows(
                conn, {"names": ["x"]} if "names" in str(statement) else {}
            )


async def _direct_row(conn: AsyncConnection, n: int) -> None:
    await _INSERT.run(conn, {"id": n, "name": f"direct-{n}", "doc": None})


async def _sqlalchemy_row(conn: AsyncConnection, n: int) -> None:
    await conn.execute(insert(things), {"id": n, "name": f"sa-{n}", "doc": None})


async def _hook_that_writes_nothing(conn: AsyncConnection, n: int) -> None:
    """As an extension hook given the connection: SQLAlchemy's side made, nothing run on it."""
    assert conn.sync_connection is not None and not conn.in_transaction()


TRANSACTIONS = {
    "direct only": [_direct_row, _direct_row],
    "direct, then sqlalchemy": [_direct_row, _sqlalchemy_row, _direct_row],
    "sqlalchemy, then direct": [_sqlalchemy_row, _direct_row],
    "direct, then a hook": [_direct_row, _hook_that_writes_nothing, _direct_row],
}


def _stored(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as other:
        return [name for (name,) in other.execute("SELECT name FROM direct_things ORDER BY id")]


@pytest.mark.parametrize("steps", TRANSACTIONS.values(), ids=TRANSACTIONS.keys())
async def test_a_transaction_commits_direct_and_sqlalchemy_statements_together(
    db: Database, database_url: str, steps: list[Callable[[AsyncConnection, int], Any]]
) -> None:
    """SQLAlchemy's side of a transaction is made only when something asks for it, on the
    same connection: whichever kind ran first, the commit keeps them all, and the connection
    goes back to the pool idle."""
    async with db.transaction() as conn:
        for n, step in enumerate(steps):
            await step(conn, n)
    assert _stored(database_url) == [
        f"{'sa' if step is _sqlalchemy_row else 'direct'}-{n}"
        for n, step in enumerate(steps)
        if step is not _hook_that_writes_nothing
    ]
    assert db.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("steps", TRANSACTIONS.values(), ids=TRANSACTIONS.keys())
async def test_a_transaction_that_fails_keeps_neither_kind(
    db: Database, database_url: str, steps: list[Callable[[AsyncConnection, int], Any]]
) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            for n, step in enumerate(steps):
                await step(conn, n)
            raise RuntimeError("rolled back")
    assert _stored(database_url) == []
    assert db.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_transaction_cancelled_midway_keeps_nothing_and_gives_its_connection_back(
    db: Database, database_url: str
) -> None:
    inside, never = asyncio.Event(), asyncio.Event()

    async def interrupted() -> None:
        async with db.transaction() as conn:
            await _direct_row(conn, 1)
            inside.set()
            await never.wait()

    task = asyncio.create_task(interrupted())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _stored(database_url) == []
    assert db.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]

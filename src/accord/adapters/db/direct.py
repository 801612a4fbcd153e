"""Hot statements run on psycopg itself, inside the transaction (issue 12).

SQLAlchemy builds and compiles accord's SQL; running it costs about twice what psycopg alone
costs (its execution context, result objects, the greenlet bridge and a ``Column`` per
described column: ``bench/statements.py``). A ``Direct`` statement is a Core statement built
once at import, compiled once per set of parameter names, and executed on the transaction's
own psycopg connection (``TransactionConnection.driver``, ``database.py``: a transaction whose
statements are all ``Direct`` never makes SQLAlchemy's ``Connection``): the same connection,
so the same transaction, and the same SQL text and type conversions (each parameter goes
through its SQLAlchemy type's bind processor, so a JSON ``None`` is JSON ``null``, as it is
through SQLAlchemy). A statement alone (``Database.statement``) runs on a connection of the
statement pool instead, psycopg's (``statement_pool.py``), in autocommit: only ``Direct``
statements run there.

What SQLAlchemy would otherwise do around a statement is done elsewhere:

- errors: psycopg's errors reach ``errors.translated`` at the transaction's edge, which
  translates them as it does SQLAlchemy's (constraint names, conflicts, lost connections);
- a lost connection: the transaction's rollback then fails on it, and SQLAlchemy, which
  rolls back every transaction that fails, sees the disconnect there and invalidates the
  pool, as for a statement of its own (the statement pool discards a broken connection when
  it comes back);
- statement events: none fire for these (``bench/statements.py`` counts at psycopg instead).

Only what a plan can hold is accepted: no ``IN`` lists expanded at execution (bind an array
and compare with ``= ANY``), no column defaults computed in Python (accord has none), and
rows only with the types whose results psycopg already returns as SQLAlchemy would (checked
once, at the first compile). A statement that needs more stays on SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection as DriverConnection
from psycopg.rows import dict_row
from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

from accord.adapters.db.database import TransactionConnection
from accord.adapters.db.statement_pool import LentConnection

Params = Mapping[str, Any]
Row = dict[str, Any]


def mapping(row: Any) -> Mapping[str, Any]:
    """A row by column name, whether a ``Direct`` statement or SQLAlchemy returned it."""
    return row if isinstance(row, dict) else row._mapping


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    defaults: dict[str, Any]  # values bound in the statement itself (a literal, say)
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]


class Direct:
    """A Core statement, compiled once per set of parameter names, run by psycopg.

    Parameter names come from accord's code, never from a request, so the plans are few.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._plans: dict[frozenset[str], _Plan] = {}

    async def rows(self, conn: AsyncConnection, params: Params) -> list[Row]:
        """Every row the statement returns, each a dict by column name."""
        plan, values = self._bind(conn.sync_engine.dialect, params)
        async with _driver(conn).cursor(row_factory=dict_row) as cursor:
            await cursor.execute(plan.sql, values)
            return await cursor.fetchall()

    async def first(self, conn: AsyncConnection, params: Params) -> Row | None:
        """The first row the statement returns, if any."""
        plan, values = self._bind(conn.sync_engine.dialect, params)
        async with _driver(conn).cursor(row_factory=dict_row) as cursor:
            await cursor.execute(plan.sql, values)
            return await cursor.fetchone()

    async def scalar(self, conn: AsyncConnection, params: Params) -> Any:
        """The first column of the first row (``None`` if there is no row)."""
        plan, values = self._bind(conn.sync_engine.dialect, params)
        async with _driver(conn).cursor() as cursor:
            await cursor.execute(plan.sql, values)
            row = await cursor.fetchone()
            return row[0] if row else None

    async def run(self, conn: AsyncConnection, params: Params) -> int:
        """Run a statement that returns no rows; the number of rows it touched."""
        plan, values = self._bind(conn.sync_engine.dialect, params)
        async with _driver(conn).cursor() as cursor:
            await cursor.execute(plan.sql, values)
            return cursor.rowcount

    def _bind(self, dialect: Dialect, params: Params) -> tuple[_Plan, dict[str, Any]]:
        names = frozenset(params)
        plan = self._plans.get(names)
        if plan is None:
            plan = self._plans[names] = _compile(self.statement, dialect, names)
        values = {**plan.defaults, **params}
        for name, process in plan.processors:
            values[name] = process(values[name])
        return plan, values


def _result_columns(statement: Executable) -> list[dict[str, Any]]:
    if isinstance(statement, Select):
        return list(statement.column_descriptions)
    if isinstance(statement, UpdateBase):
        return list(statement.returning_column_descriptions)
    return []


def _driver(conn: AsyncConnection) -> DriverConnection[Any]:
    """The psycopg connection under one that ``Database`` lent: no I/O, no greenlet."""
    if isinstance(conn, LentConnection | TransactionConnection):
        return conn.driver  # a statement alone (statement_pool.py), or a transaction's
    raise TypeError("a Direct statement runs in Database.transaction or Database.statement")


def _compile(statement: Executable, dialect: Dialect, names: frozenset[str]) -> _Plan:
    compiled = statement.compile(dialect=dialect, column_keys=sorted(names))
    assert isinstance(compiled, SQLCompiler)
    if compiled.positional or compiled.post_compile_params or compiled.literal_execute_params:
        raise TypeError("a Direct statement binds named parameters only, none expanded")
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise TypeError("a Direct statement cannot compute column defaults in Python")
    for column in _result_columns(statement):
        if column["type"].dialect_impl(dialect).result_processor(dialect, None) is not None:
            raise TypeError(f"a Direct statement cannot convert the column {column['name']!r}")
    defaults = {
        name: bind.effective_value
        for name, bind in compiled.binds.items()
        if name not in names and not bind.required
    }
    processors = tuple(
        (name, process)
        for name, bind in compiled.binds.items()
        if (process := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        and (name in names or name in defaults)
    )
    return _Plan(str(compiled), defaults, processors)

"""The ledger's hot statements run on the driver's own cursor (PostgreSQL with psycopg).

A transfer runs two ledger statements (the lock and the write). Through SQLAlchemy's
``Connection.execute`` each one cost about 120 us of the server's CPU where psycopg alone
takes about 45 (bench/financial): SQLAlchemy builds an execution context and a result for
every call and reads the cursor's column descriptions. The statements are still written
with SQLAlchemy (one place for the SQL); this module renders each one once per process
and then hands its text and parameters straight to psycopg, on the connection of the
session's transaction, so nothing about the transaction changes.

What SQLAlchemy would have done around the call, this module does too: each bound value
goes through its type's bind processor (the ``MoneyType`` checks), the rows' values need no
result processing on psycopg (checked when a statement is prepared: a column whose type
would convert its values is refused), and a driver error is raised as SQLAlchemy's own
exception, with a lost connection invalidated, so ``Database`` turns it into "database
unavailable" exactly as before. Other back-ends (SQLite) run through SQLAlchemy as they did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement

__all__ = ["fetch_all"]

# The type code SQLAlchemy's numeric types are asked about: the ledger's amounts are NUMERIC
# (a column's processor is chosen once, not from each result's description).
_NUMERIC_OID = 1700


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A statement rendered for psycopg: its text, the values it holds itself (literals the
    statement was built with), each parameter's bind processor and each result column's
    processor (None where a value is taken as psycopg gives it)."""

    sql: str
    constants: dict[str, Any]
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]
    results: tuple[Callable[[Any], Any] | None, ...] | None


# By the statement object's identity: the ledger's statements are built once per process.
_PREPARED: dict[int, tuple[ClauseElement, _Prepared | None]] = {}


def fetch_all(
    connection: Connection, statement: ClauseElement, params: dict[str, Any]
) -> Sequence[Sequence[Any]]:
    """Run ``statement`` (built once per process) with ``params``; return its rows.

    On psycopg the rendered text goes to the driver's cursor; elsewhere SQLAlchemy runs it.
    """
    dialect = connection.dialect
    prepared = _prepared(statement, dialect) if dialect.driver == "psycopg" else None
    if prepared is None or connection.dispatch.before_cursor_execute:
        # Someone watches this connection's statements (tracing, a test counting them):
        # SQLAlchemy runs it, with its events.
        return connection.execute(statement, params).all()
    values = prepared.constants | params
    for name, process in prepared.processors:
        values[name] = process(values[name])
    dbapi_connection = connection.connection
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(prepared.sql, values)
        rows = cursor.fetchall()
    except dialect.loaded_dbapi.Error as error:
        raise _translated(
            connection, dbapi_connection, cursor, prepared.sql, values, error
        ) from error
    finally:
        cursor.close()
    if prepared.results is None:
        return rows
    return [
        tuple(
            value if process is None else process(value)
            for process, value in zip(prepared.results, row, strict=True)
        )
        for row in rows
    ]


def _prepared(statement: ClauseElement, dialect: Dialect) -> _Prepared | None:
    """The statement rendered once; None for one whose text depends on its values (an
    expanding IN), which SQLAlchemy renders on every call."""
    found = _PREPARED.get(id(statement))
    if found is not None and found[0] is statement:
        return found[1]
    compiled = statement.compile(dialect=dialect)
    if any(bind.expanding or bind.literal_execute for bind in compiled.binds.values()):
        _PREPARED[id(statement)] = (statement, None)
        return None
    processors = []
    constants = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((name, process))
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, _NUMERIC_OID)
        for column in statement.exported_columns  # type: ignore[attr-defined]
    )
    prepared = _Prepared(
        str(compiled),
        constants,
        tuple(processors),
        None if all(process is None for process in results) else results,
    )
    _PREPARED[id(statement)] = (statement, prepared)
    return prepared


def _translated(
    connection: Connection,
    dbapi_connection: Any,
    cursor: Any,
    sql: str,
    params: dict[str, Any],
    error: Exception,
) -> exc.DBAPIError:
    """The driver's error as SQLAlchemy raises it; a lost connection is invalidated first."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(error, dbapi_connection, cursor)
    if lost:
        connection.invalidate(error)
    return exc.DBAPIError.instance(
        sql,
        params,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=dialect,
    )

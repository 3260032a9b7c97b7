"""Database.statement: work that is one statement, which is then its own transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select

from printsrv.errors import DatabaseUnavailable
from printsrv.operations.installation import Installation
from printsrv.people.models import LoginThrottle
from printsrv.platform.database import Database
from printsrv.platform.models import utcnow


def counters(installation: Installation) -> int:
    with installation.db.read() as session:
        return session.scalar(select(func.count()).select_from(LoginThrottle)) or 0


def add_counter(connection: object, key: str) -> None:
    connection.execute(  # type: ignore[attr-defined]
        insert(LoginThrottle).values(key=key, failures=1, window_start=utcnow())
    )


def test_a_statement_is_committed_without_a_commit(installation: Installation) -> None:
    with installation.db.statement() as connection:
        add_counter(connection, "user:janet")
    assert counters(installation) == 1


def test_a_read_sees_what_is_committed(installation: Installation) -> None:
    with installation.db.transaction() as session:
        session.add(LoginThrottle(key="addr:192.0.2.1", failures=2, window_start=utcnow()))
    with installation.db.statement(write=False) as connection:
        assert connection.scalar(select(LoginThrottle.failures)) == 2


def test_transactions_after_a_statement_still_roll_back(installation: Installation) -> None:
    # On PostgreSQL the statement's pooled connection was in autocommit mode; it must go
    # back to the pool in transaction mode, or a later transaction's failure keeps its
    # first writes.
    for _ in range(3):
        with installation.db.statement(write=False) as connection:
            connection.scalar(select(1))
    with pytest.raises(RuntimeError), installation.db.transaction() as session:
        session.add(LoginThrottle(key="user:ghost", failures=1, window_start=utcnow()))
        session.flush()
        raise RuntimeError("the rest of the unit of work failed")
    assert counters(installation) == 0


def test_an_unreachable_database_is_unavailable() -> None:
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        with pytest.raises(DatabaseUnavailable), db.statement() as connection:
            connection.scalar(select(1))
    finally:
        db.dispose()

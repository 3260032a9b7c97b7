"""Fixtures for the accounting core: real SQLite and (when configured) real PostgreSQL.

``engine`` is parametrised over both back-ends; PostgreSQL runs only when
``PRINTSRV_TEST_DATABASE_URL`` names a database, in a private schema that is dropped at
the end. Tables are created afresh for every test. ``session`` is one ORM session on that
engine, rolled back after the test; tests that need several transactions (concurrency,
rollback) use ``engine`` and open their own sessions.

SQLite is set up as printsrv runs it: WAL, foreign keys on, and every transaction begun
with ``BEGIN IMMEDIATE`` (the pysqlite recipe: the driver's own transaction handling is
switched off on connect and the ``begin`` event emits the statement), which serialises
writers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session

from financial.accounts import Actor
from financial.schema import metadata

PG_URL_ENV = "PRINTSRV_TEST_DATABASE_URL"
ADMIN = Actor("admin", "admin")
SYSTEM = Actor("system", "printing")


def sqlite_engine(path: Path) -> Engine:
    """An engine on an SQLite file, configured as printsrv configures it."""
    engine = create_engine(
        f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30}
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@pytest.fixture(scope="session")
def postgresql_engine() -> Iterator[Engine]:
    """An engine on a private schema of the PostgreSQL test database, or a skip."""
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_URL_ENV} (a database URL)")
    schema = f"financial_test_{os.getpid()}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine = create_engine(
        url, pool_size=20, max_overflow=10, connect_args={"options": f"-csearch_path={schema}"}
    )
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A real database engine with the accounting tables freshly created."""
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path / "financial.sqlite")
        metadata.create_all(engine)
        try:
            yield engine
        finally:
            engine.dispose()
    else:
        engine = request.getfixturevalue("postgresql_engine")
        metadata.drop_all(engine)
        metadata.create_all(engine)
        yield engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """One session on ``engine``; whatever the test wrote is rolled back afterwards."""
    with Session(engine) as session:
        try:
            yield session
        finally:
            session.rollback()


@pytest.fixture
def backend(engine: Engine) -> str:
    """``sqlite`` or ``postgresql``."""
    return engine.dialect.name

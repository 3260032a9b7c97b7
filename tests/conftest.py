"""Shared fixtures: a clean database on each back-end, an installation, a live server.

Every test that touches the database runs on SQLite, and on PostgreSQL too when
PRINTSRV_TEST_DATABASE_URL is set. Each test gets a clean database: SQLite copies a
freshly migrated template file; PostgreSQL migrates once into a private schema per test
session and empties every table before each test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from support import TEST_SECRET, LiveServer, empty_postgresql

from printsrv.migrations import upgrade_schema
from printsrv.operations.installation import Installation, open_installation
from printsrv.platform.database import Database
from printsrv.platform.environment import Environment

PG_URL = os.environ.get("PRINTSRV_TEST_DATABASE_URL", "")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not PG_URL, reason="PRINTSRV_TEST_DATABASE_URL is not set"),
    ),
]


def _with_search_path(url: str, schema: str) -> str:
    parsed = make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "printsrv.db"
    db = Database(f"sqlite:///{path}")
    upgrade_schema(db)
    with db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path


@pytest.fixture(scope="session")
def postgresql_schema_url() -> Iterator[str]:
    """A schema of its own in the test database, so concurrent test runs never collide."""
    schema = f"printsrv_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = _with_search_path(PG_URL, schema)
    db = Database(url)
    upgrade_schema(db)
    db.dispose()
    yield url
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a clean, migrated database, once per back-end."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "printsrv.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgresql_schema_url")
    empty_postgresql(url)
    return url


@pytest.fixture
def environment(tmp_path: Path, database_url: str) -> Environment:
    return Environment(home=tmp_path / "home", database_url=database_url, secret_key=TEST_SECRET)


@pytest.fixture
def installation(environment: Environment) -> Iterator[Installation]:
    installation = open_installation(environment)
    yield installation
    installation.db.dispose()


@pytest.fixture
def process_env(environment: Environment, monkeypatch: pytest.MonkeyPatch) -> Environment:
    """Point PRINTSRV_* at this test's installation, for the CLI and subprocesses.

    The database is migrated already; the home exists too, as after `printsrv init`, since
    commands other than serve/init/restore refuse an installation that was never set up.
    """
    environment.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    monkeypatch.setenv("PRINTSRV_HOME", str(environment.home))
    monkeypatch.setenv("PRINTSRV_DATABASE_URL", environment.database_url)
    monkeypatch.setenv("PRINTSRV_SECRET_KEY", TEST_SECRET)
    return environment


@pytest.fixture
def live_server(installation: Installation) -> Iterator[LiveServer]:
    """The app for this test's installation, served over a real loopback socket."""
    server = LiveServer(installation).start()
    yield server
    server.stop()

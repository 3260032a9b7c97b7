"""Alembic environment: runs on a connection handed over by `upgrade_schema`, or the URL in
PRINTSRV_DATABASE_URL when called from the alembic command line."""

from __future__ import annotations

from alembic import context

from printsrv.platform.database import Database
from printsrv.platform.environment import load_environment
from printsrv.tables import every_metadata

target_metadata = every_metadata()


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        db = Database(load_environment().database_url)
        with db.engine.begin() as connection:
            _run(connection)
        return
    _run(connection)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()

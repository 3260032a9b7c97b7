"""The migrations build exactly the schema the models describe, on every back-end."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from printsrv.migrations import schema_is_current, upgrade_schema
from printsrv.operations.installation import Installation
from printsrv.tables import every_metadata


def test_migrated_database_matches_the_models(installation: Installation) -> None:
    with installation.db.read() as session:
        context = MigrationContext.configure(session.connection(), opts={"compare_type": True})
        differences = compare_metadata(context, every_metadata())
    assert differences == []


def test_upgrade_is_idempotent(installation: Installation) -> None:
    assert schema_is_current(installation.db)
    upgrade_schema(installation.db)
    assert schema_is_current(installation.db)

"""The migrations build exactly the schema the models describe, on every back-end."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from support import set_config

from printsrv.migrations import upgrade_schema
from printsrv.operations.installation import Installation
from printsrv.tables import every_metadata


def test_migrated_database_matches_the_models(installation: Installation) -> None:
    with installation.db.read() as session:
        context = MigrationContext.configure(session.connection(), opts={"compare_type": True})
        differences = compare_metadata(context, every_metadata())
    assert differences == []


def _status(installation: Installation) -> str:
    installation.monitor.refresh()
    return installation.monitor.status(installation.config.snapshot()).value


def test_upgrade_is_idempotent(installation: Installation) -> None:
    # systemStatus is SETUP while the schema is behind the newest migration (or the admin
    # password unset): with the password set, READY says the schema is current.
    set_config(installation, {"api.restful.auth.password": "admin-password-0123"})
    assert _status(installation) == "READY"
    upgrade_schema(installation.db)
    assert _status(installation) == "READY"

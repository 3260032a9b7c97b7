"""Migration 0014 moves a stored print.inbox.expiry-hours to release.hold-hours."""

from __future__ import annotations

from alembic import command
from sqlalchemy import select

from printsrv.migrations import alembic_config, upgrade_schema
from printsrv.operations.installation import Installation
from printsrv.platform.models import ConfigProperty


def _migrate(installation: Installation, action: str, target: str) -> None:
    cfg = alembic_config()
    with installation.db.transaction() as session:
        cfg.attributes["connection"] = session.connection()
        getattr(command, action)(cfg, target)


def test_a_stored_inbox_expiry_becomes_the_hold_hours(installation: Installation) -> None:
    _migrate(installation, "downgrade", "0014_release_station-1")
    with installation.db.transaction() as session:
        session.add(ConfigProperty(name="print.inbox.expiry-hours", value="48"))
    upgrade_schema(installation.db)
    with installation.db.read() as session:
        stored = dict(session.execute(select(ConfigProperty.name, ConfigProperty.value)).all())
    assert stored.get("release.hold-hours") == "48"
    assert "print.inbox.expiry-hours" not in stored
    installation.config.refresh()
    assert installation.config.snapshot()["release.hold-hours"] == 48

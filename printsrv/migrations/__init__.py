"""Alembic migrations, and `upgrade_schema()`, which `printsrv serve` runs on start.

The same migration scripts serve SQLite and PostgreSQL. Each feature area keeps its own
branch of migrations off the foundation (branch labels), so areas built side by side never
fight over one chain; `upgrade_schema` applies every head. Several servers may start at once
against one database: on PostgreSQL an advisory lock lets one of them migrate while the
others wait; on SQLite the BEGIN IMMEDIATE of a write transaction does the same.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import text

from printsrv.platform.database import Database
from printsrv.platform.notifications import Topic, announce

MIGRATIONS_DIR = Path(__file__).parent
# Any constant works; it only has to be the same for every printsrv process.
_ADVISORY_LOCK_ID = 0x7072696E74  # "print"


def alembic_config() -> AlembicConfig:
    """An Alembic config pointing at these migrations (no alembic.ini needed)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def upgrade_schema(db: Database) -> None:
    """Bring the database schema up to the newest migration."""
    cfg = alembic_config()
    with db.transaction() as session:
        connection = session.connection()
        if db.backend == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")
        announce(session, Topic.STATUS)  # running servers: the schema's version changed

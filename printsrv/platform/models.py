"""The shared declarative `Base` (one metadata, one naming convention for every table),
UTC timestamps, and the platform's own tables: stored config properties and their revision,
and the fingerprint of the installation secret.

Every domain keeps its tables in its own `models.py` on this `Base`; `printsrv.tables`
imports them all where the metadata must be complete (migrations, the app, tests). Times are
stored in UTC; user and group names are stored lower-case, so that look-ups are
case-insensitive on both back-ends without collation tricks. The accounting tables live in
`financial.schema`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    DateTime,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as an aware UTC datetime.

    SQLite keeps no offset; PostgreSQL's `timestamptz` does. Normalising here gives both
    back-ends the same behaviour.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone-aware time")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ConfigProperty(Base):
    """A config property's stored value (secrets as keyed hashes)."""

    __tablename__ = "config_property"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="")


class ConfigRevision(Base):
    """One row whose token changes with every config write.

    Running servers poll this single row to learn that their cached config is stale.
    A random token rather than a counter still changes if the table is emptied.
    """

    __tablename__ = "config_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    token: Mapped[str] = mapped_column(String(36))


class SecretFingerprint(Base):
    """One row: a fingerprint of the installation secret the database was set up with.

    A key derived from the secret for this one purpose (`security.secret_fingerprint`), not
    the secret: it only tells a machine whether its secret is the installation's, before
    every stored password, API key and token would quietly fail to match.
    """

    __tablename__ = "secret_fingerprint"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    fingerprint: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

"""release: station sessions, guessing counters; print.inbox.expiry-hours -> release.hold-hours

Tables of printsrv.release (see printsrv/release/models.py). The config property that says
how long a held document can be released is renamed to release.hold-hours, next to the
other release.* properties; a value already set moves with it.

Revision ID: 0014_release_station
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_release_station"
down_revision = "0001"
branch_labels = ("release",)
depends_on = None

OLD_NAME = "print.inbox.expiry-hours"
NEW_NAME = "release.hold-hours"


def _rename_property(old: str, new: str) -> None:
    config = sa.table("config_property", sa.column("name", sa.String))
    op.execute(config.update().where(config.c.name == old).values(name=new))


def upgrade() -> None:
    op.create_table(
        "release_station_session",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("printer_name", sa.String(length=255), nullable=False),
        sa.Column("station_address", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_release_station_session_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_release_station_session")),
    )
    with op.batch_alter_table("release_station_session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_release_station_session_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_release_station_session_user_id"), ["user_id"], unique=False
        )
    op.create_table(
        "release_throttle",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_release_throttle")),
    )
    with op.batch_alter_table("release_throttle", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_release_throttle_window_start"), ["window_start"], unique=False
        )
    _rename_property(OLD_NAME, NEW_NAME)


def downgrade() -> None:
    _rename_property(NEW_NAME, OLD_NAME)
    with op.batch_alter_table("release_throttle", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_throttle_window_start"))
    op.drop_table("release_throttle")
    with op.batch_alter_table("release_station_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_station_session_user_id"))
        batch_op.drop_index(batch_op.f("ix_release_station_session_expires_at"))
    op.drop_table("release_station_session")

"""system: batch jobs that make the system UNAVAILABLE while they run; provisioning fields of
users (card and ID numbers, PIN, other emails, logical deletion)

Revision ID: 0004_system
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_system"
down_revision = "0001"
branch_labels = ("system",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_job")),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("card_number", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("id_number", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("pin_hash", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("email_other", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("source", sa.String(length=20), nullable=False, server_default="internal")
        )
        batch.create_unique_constraint(op.f("uq_users_card_number"), ["card_number"])
        batch.create_unique_constraint(op.f("uq_users_id_number"), ["id_number"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("uq_users_id_number"), type_="unique")
        batch.drop_constraint(op.f("uq_users_card_number"), type_="unique")
        for column in (
            "source",
            "deleted_at",
            "email_other",
            "pin_hash",
            "id_number",
            "card_number",
        ):
            batch.drop_column(column)
    op.drop_table("batch_job")

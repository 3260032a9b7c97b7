"""guards: the fingerprint of the installation secret

secret_fingerprint (printsrv/platform/models.py): one row, written by the first start, that
lets a machine with another installation secret refuse to start instead of answering 401 to
every credential (printsrv/operations/installation.py: check_secret).

Revision ID: 0016_guards
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_guards"
down_revision = "0001"
branch_labels = ("guards",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "secret_fingerprint",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secret_fingerprint")),
    )


def downgrade() -> None:
    op.drop_table("secret_fingerprint")

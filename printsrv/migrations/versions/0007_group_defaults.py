"""group defaults: initial credit and credit limit for members' new USER accounts

Columns of printsrv.people.models.UserGroup, read by printsrv.people.group_defaults. NULL means the
group sets no default.

Revision ID: 0007_group_defaults
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import financial.schema

revision = "0007_group_defaults"
down_revision = "0001"
branch_labels = ("group_defaults",)
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch): on SQLite a batch would copy and drop user_group, and
    # dropping it would cascade-delete every membership (user_group_member references it).
    op.add_column(
        "user_group", sa.Column("initial_credit", financial.schema.MoneyType(), nullable=True)
    )
    op.add_column(
        "user_group", sa.Column("credit_limit_policy", sa.String(length=10), nullable=True)
    )
    op.add_column(
        "user_group", sa.Column("credit_limit", financial.schema.MoneyType(), nullable=True)
    )


def downgrade() -> None:
    # SQLite (3.35+) drops a column in place, so no batch copy of user_group here either.
    for column in ("credit_limit", "credit_limit_policy", "initial_credit"):
        op.drop_column("user_group", column)

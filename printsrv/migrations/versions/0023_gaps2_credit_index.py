"""quotas: an index on quota_credit.period_start for the pruning of long-past credits

Every allocator round deletes a batch of the oldest quota_credit rows that no credit can
need any more (printsrv.accounts.quotas.prune_credits); without the index each round scans
the whole table, which holds a row per member and period.

Revision ID: 0023_gaps2_credit_index
Revises: 0012_quotas
"""

from __future__ import annotations

from alembic import op

revision = "0023_gaps2_credit_index"
down_revision = "0012_quotas"
branch_labels = ("gaps2",)
depends_on = None


def upgrade() -> None:
    op.create_index("ix_quota_credit_period_start", "quota_credit", ["period_start"])


def downgrade() -> None:
    op.drop_index("ix_quota_credit_period_start", table_name="quota_credit")

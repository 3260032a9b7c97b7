"""admin dashboard: indexes for its figures

printsrv/operations/dashboard.py sums a month of completed print jobs (per day, printer and
group), lists the latest failures, and sums a month of the ledger's PRINT_OUT rows per day.
Covering indexes keep each of those one index range however long the history grows
(bench/admin_dashboard.py: 1,000,000 ledger rows, 100,000 documents).

Revision ID: 0020_admin_dashboard
Revises: 0019_admin_console
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_admin_dashboard"
down_revision = "0019_admin_console"
branch_labels = None
depends_on = ("0002_financial", "0006_documents")

COMPLETED = "state = 'completed'"
FAILED = "state IN ('failed', 'aborted', 'canceled')"


def upgrade() -> None:
    op.create_index(
        "ix_print_job_completed",
        "print_job",
        ["finished_at", "pages", "printer_name", "user_id"],
        postgresql_where=sa.text(COMPLETED),
        sqlite_where=sa.text(COMPLETED),
    )
    op.create_index(
        "ix_print_job_failed",
        "print_job",
        ["finished_at"],
        postgresql_where=sa.text(FAILED),
        sqlite_where=sa.text(FAILED),
    )
    op.create_index(
        "ix_account_trx_trx_type_created_at", "account_trx", ["trx_type", "created_at", "amount"]
    )


def downgrade() -> None:
    op.drop_index("ix_account_trx_trx_type_created_at", table_name="account_trx")
    op.drop_index("ix_print_job_failed", table_name="print_job")
    op.drop_index("ix_print_job_completed", table_name="print_job")

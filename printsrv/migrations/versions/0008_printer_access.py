"""printer access: which user groups may (ALLOW) or may not (DENY) print on a printer

Table of printsrv.printing.access (see PrinterGroupAccess in printsrv/printing/models.py). It refers to
the printer table, so it grows off the documents branch.

Revision ID: 0008_printer_access
Revises: 0006_documents
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_printer_access"
down_revision = "0006_documents"
branch_labels = ("printer_access",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "printer_group_access",
        sa.Column("printer_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=5), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "scope IN ('ALLOW', 'DENY')", name=op.f("ck_printer_group_access_scope")
        ),
        sa.ForeignKeyConstraint(
            ["printer_id"],
            ["printer.id"],
            name=op.f("fk_printer_group_access_printer_id_printer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["user_group.id"],
            name=op.f("fk_printer_group_access_group_id_user_group"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("printer_id", "group_id", name=op.f("pk_printer_group_access")),
    )
    with op.batch_alter_table("printer_group_access") as batch:
        batch.create_index(batch.f("ix_printer_group_access_group_id"), ["group_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("printer_group_access") as batch:
        batch.drop_index(batch.f("ix_printer_group_access_group_id"))
    op.drop_table("printer_group_access")

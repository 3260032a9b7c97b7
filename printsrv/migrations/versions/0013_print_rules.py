"""print rules: the rules checked when a document is accepted for printing, and the prints
they refused or held for approval

Tables of printsrv.printing.rules and printsrv.printing.approval (see PrintRule and
RuledPrint in printsrv/printing/models.py). A ruled print refers to the document log, so the
branch grows off the documents branch.

Revision ID: 0013_print_rules
Revises: 0006_documents
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import financial.schema

revision = "0013_print_rules"
down_revision = "0006_documents"
branch_labels = ("print_rules",)
depends_on = None

_DOC_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "print_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("scope_kind", sa.String(length=10), nullable=False),
        sa.Column("scope_name", sa.String(length=255), nullable=False),
        sa.Column("condition_kind", sa.String(length=10), nullable=False),
        sa.Column("condition_value", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "scope_kind IN ('all', 'printer', 'queue', 'group')",
            name=op.f("ck_print_rule_scope_kind"),
        ),
        sa.CheckConstraint(
            "condition_kind IN ('pages', 'copies', 'sheets', 'color', 'type')",
            name=op.f("ck_print_rule_condition_kind"),
        ),
        sa.CheckConstraint(
            "action IN ('refuse', 'hold', 'grayscale', 'duplex')",
            name=op.f("ck_print_rule_action"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_print_rule")),
        sa.UniqueConstraint("name", name=op.f("uq_print_rule_name")),
    )
    op.create_table(
        "ruled_print",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", _DOC_ID, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("printer_name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("layers", sa.Text(), nullable=False),
        sa.Column("cost", financial.schema.MoneyType(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=255), nullable=False),
        sa.Column("print_document_id", _DOC_ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('refused', 'waiting', 'approved', 'denied')",
            name=op.f("ck_ruled_print_state"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"], ["document.id"], name=op.f("fk_ruled_print_document_id_document")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_ruled_print_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ruled_print")),
    )
    with op.batch_alter_table("ruled_print") as batch:
        batch.create_index(batch.f("ix_ruled_print_document_id"), ["document_id"], unique=False)
        batch.create_index(batch.f("ix_ruled_print_user_id"), ["user_id"], unique=False)
        batch.create_index(
            "ux_ruled_print_waiting_document",
            ["document_id"],
            unique=True,
            sqlite_where=sa.text("state = 'waiting'"),
            postgresql_where=sa.text("state = 'waiting'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("ruled_print") as batch:
        batch.drop_index("ux_ruled_print_waiting_document")
        batch.drop_index(batch.f("ix_ruled_print_user_id"))
        batch.drop_index(batch.f("ix_ruled_print_document_id"))
    op.drop_table("ruled_print")
    op.drop_table("print_rule")

"""documents: the document log, print queues, printers with their prices, print jobs

Tables of printsrv.documents.log and printsrv.printing (see printsrv/documents/models.py and
printsrv/printing/models.py).

Revision ID: 0006_documents
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import financial.schema

revision = "0006_documents"
down_revision = "0001"
branch_labels = ("documents",)
depends_on = None

_DOC_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "document",
        sa.Column("id", _DOC_ID, nullable=False),
        sa.Column("doc_type", sa.String(length=10), nullable=False),
        sa.Column("source_id", _DOC_ID, nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("ext_id", sa.String(length=255), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("store", sa.Boolean(), nullable=False),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=False),
        sa.Column("pdf_bytes", sa.BigInteger(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("source_type", sa.String(length=100), nullable=False),
        sa.Column("source_bytes", sa.BigInteger(), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column("queue_name", sa.String(length=100), nullable=False),
        sa.Column("ipp_options", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "doc_type IN ('in', 'pdf', 'print', 'ticket')", name=op.f("ck_document_doc_type")
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["document.id"], name=op.f("fk_document_source_id_document")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_document_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document")),
        sa.UniqueConstraint("user_id", "ext_id", name=op.f("uq_document_user_id")),
    )
    with op.batch_alter_table("document") as batch:
        batch.create_index(batch.f("ix_document_created_at"), ["created_at"], unique=False)
        batch.create_index(batch.f("ix_document_pdf_sha256"), ["pdf_sha256"], unique=False)
        batch.create_index(batch.f("ix_document_source_id"), ["source_id"], unique=False)
        batch.create_index(batch.f("ix_document_user_id"), ["user_id"], unique=False)

    op.create_table(
        "print_queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("reserved", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("ip_allowed", sa.Text(), nullable=False),
        sa.Column("printer_name", sa.String(length=255), nullable=True),
        sa.Column("ipp_options", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_print_queue")),
        sa.UniqueConstraint("name", name=op.f("uq_print_queue_name")),
    )

    op.create_table(
        "printer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("state_message", sa.Text(), nullable=False),
        sa.Column("accepting", sa.Boolean(), nullable=False),
        sa.Column("info", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("make_and_model", sa.Text(), nullable=False),
        sa.Column("capabilities", sa.Text(), nullable=False),
        sa.Column("cost_model", sa.Text(), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_printer")),
        sa.UniqueConstraint("name", name=op.f("uq_printer_name")),
    )

    op.create_table(
        "print_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", _DOC_ID, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("printer_name", sa.String(length=255), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("sides", sa.Integer(), nullable=False),
        sa.Column("sheets", sa.Integer(), nullable=False),
        sa.Column("cost", financial.schema.MoneyType(), nullable=False),
        sa.Column("charge_trx_id", sa.BigInteger(), nullable=True),
        sa.Column("refund_trx_id", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("cups_job_id", sa.Integer(), nullable=True),
        sa.Column("cups_state", sa.String(length=12), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("poll_failures", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "state IN ('queued', 'submitted', 'completed', 'canceled', 'aborted', 'failed')",
            name=op.f("ck_print_job_state"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"], ["document.id"], name=op.f("fk_print_job_document_id_document")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_print_job_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_print_job")),
        sa.UniqueConstraint("document_id", name=op.f("uq_print_job_document_id")),
    )
    with op.batch_alter_table("print_job") as batch:
        batch.create_index(
            "ix_print_job_state_next_poll_at", ["state", "next_poll_at"], unique=False
        )
        batch.create_index(batch.f("ix_print_job_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("print_job") as batch:
        batch.drop_index(batch.f("ix_print_job_user_id"))
        batch.drop_index("ix_print_job_state_next_poll_at")
    op.drop_table("print_job")
    op.drop_table("printer")
    op.drop_table("print_queue")
    with op.batch_alter_table("document") as batch:
        batch.drop_index(batch.f("ix_document_user_id"))
        batch.drop_index(batch.f("ix_document_source_id"))
        batch.drop_index(batch.f("ix_document_pdf_sha256"))
        batch.drop_index(batch.f("ix_document_created_at"))
    op.drop_table("document")

"""documents: per-page colour detection of each document's PDF

Columns of printsrv.documents.models.Document, written by printsrv.printing.intake from
printsrv.documents.convert.colour: ``page_colors`` ("C" or "G" per page) prices a release page by page,
``pages_color`` and ``pages_grayscale`` are shown in the document log and on the receipt.
NULL (every row from before, and a detection that failed) means not known: such a document
is priced as colour unless the job asks for monochrome.

Revision ID: 0010_document_page_colors
Revises: 0008_printer_access
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_document_page_colors"
down_revision = "0008_printer_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch): on SQLite a batch would copy and drop document, which
    # print_job and the ledger reference.
    op.add_column("document", sa.Column("page_colors", sa.Text(), nullable=True))
    op.add_column("document", sa.Column("pages_color", sa.Integer(), nullable=True))
    op.add_column("document", sa.Column("pages_grayscale", sa.Integer(), nullable=True))


def downgrade() -> None:
    # SQLite (3.35+) drops a column in place, so no batch copy of document either.
    for column in ("pages_grayscale", "pages_color", "page_colors"):
        op.drop_column("document", column)

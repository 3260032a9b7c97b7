"""The document log's table (`printsrv.documents.log`; migration 0006_documents, branch
"documents").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from printsrv.people.models import User
from printsrv.platform.models import Base, UTCDateTime, utcnow

# Document ids are BIGINT like account_trx.document_id, which points at them; SQLite needs
# INTEGER for a primary key that takes the row id.
DOCUMENT_ID = BigInteger().with_variant(Integer(), "sqlite")

DOCUMENT_TYPES = ("in", "pdf", "print", "ticket")


class Document(Base):
    """One entry of the document log: a document that came in (`in`) or went out (`print`).

    The PDF itself lives in the content-addressed store under PRINTSRV_HOME, named by
    `pdf_sha256`; `store` says whether it is still kept (retention clears it, the row
    stays). A `print` entry points at the `in` entry it printed (`source_id`); the caller's
    `ext_id` is kept on the `in` entry, unique per user.
    """

    __tablename__ = "document"
    __table_args__ = (
        UniqueConstraint("user_id", "ext_id"),
        CheckConstraint("doc_type IN ('in', 'pdf', 'print', 'ticket')", name="doc_type"),
    )

    id: Mapped[int] = mapped_column(DOCUMENT_ID, primary_key=True)
    doc_type: Mapped[str] = mapped_column(String(10))
    source_id: Mapped[int | None] = mapped_column(
        DOCUMENT_ID, ForeignKey("document.id"), index=True, default=None
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    ext_id: Mapped[str | None] = mapped_column(String(255), default=None)
    title: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    store: Mapped[bool] = mapped_column(Boolean, default=True)
    pdf_sha256: Mapped[str] = mapped_column(String(64), index=True)
    pdf_bytes: Mapped[int] = mapped_column(BigInteger)
    pages: Mapped[int] = mapped_column(Integer)
    # What came in, before conversion: the format found by sniffing, its size and digest.
    source_type: Mapped[str] = mapped_column(String(100), default="")
    source_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    source_sha256: Mapped[str] = mapped_column(String(64), default="")
    client_address: Mapped[str] = mapped_column(String(64), default="")
    queue_name: Mapped[str] = mapped_column(String(100), default="")
    ipp_options: Mapped[str] = mapped_column(Text, default="{}")  # JSON, as the caller asked
    # Colour detection of the PDF (printsrv.documents.convert.colour): per page "C" (colour) or "G"
    # (grey), and the counts shown in the log; NULL when it was not or could not be detected.
    page_colors: Mapped[str | None] = mapped_column(Text, default=None)
    pages_color: Mapped[int | None] = mapped_column(Integer, default=None)
    pages_grayscale: Mapped[int | None] = mapped_column(Integer, default=None)

    user: Mapped[User] = relationship()
    source: Mapped[Document | None] = relationship(remote_side=[id])

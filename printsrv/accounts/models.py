"""The idempotency keys' table: the first answer to a money-changing POST, per caller and key
(`printsrv.accounts.idempotency`; migration 0005_idempotency, branch "idempotency").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from printsrv.platform.models import Base, UTCDateTime, utcnow


class IdempotencyKey(Base):
    """The first answer to a POST that carried an `Idempotency-Key` header.

    The primary key (caller, key) is inserted in the same transaction as the money change,
    so of two concurrent requests with one key only one can commit: the other waits on the
    key, then finds the stored answer and returns it. `status_code` and `body` are NULL
    only inside that first transaction, never in a committed row.
    """

    __tablename__ = "idempotency_key"

    caller: Mapped[str] = mapped_column(String(120), primary_key=True)
    idem_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of method, path, parameters
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    body: Mapped[str | None] = mapped_column(Text, default=None)
    # Indexed: every server process purges the expired keys once a minute.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

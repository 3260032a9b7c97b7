"""The operations' table: batch jobs while they run (`printsrv.operations.status`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from printsrv.platform.models import Base, UTCDateTime, utcnow


class BatchJob(Base):
    """A batch job (backup, user sync, database clean-up) while it runs, on any machine.

    `systemStatus` reports UNAVAILABLE while a row with a recent heartbeat exists; a job
    that died without removing its row stops counting once its heartbeat is old.
    """

    __tablename__ = "batch_job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

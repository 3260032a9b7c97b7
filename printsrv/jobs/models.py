"""The jobs' tables: one row per job, its result files, and their bytes in chunks
(`printsrv.jobs`; migration 0011_jobs, branch "jobs").

Everything a poll or a download needs is in the database, so any machine of an installation
answers for a job any other machine ran.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from printsrv.platform.models import Base, UTCDateTime, utcnow

JOB_STATES = ("queued", "running", "done", "failed", "canceled", "expired")
OWNER_KINDS = ("admin", "user")


class Job(Base):
    """One job, from its request until its results expire.

    `state`: queued, running (a runner holds the lease `lease_owner`/`lease_until`), then
    done, failed or canceled; `expired` once `expires_at` passed and the files were removed
    (the row stays a while longer, so a late download is told 410 rather than 404).
    `attempt` counts the claims: a runner's writes name the attempt they belong to, so one
    that lost its lease to another machine changes nothing.
    `owner_kind`/`owner_user_id` say who may read the job: the REST admin, or one user.
    """

    __tablename__ = "async_job"
    __table_args__ = (
        CheckConstraint(
            "state IN ('queued', 'running', 'done', 'failed', 'canceled', 'expired')",
            name="state",
        ),
        CheckConstraint("owner_kind IN ('admin', 'user')", name="owner_kind"),
        Index("ix_async_job_state_lease_until", "state", "lease_until"),
    )

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_type: Mapped[str] = mapped_column(String(40))
    argument: Mapped[str] = mapped_column(Text, default="{}")  # checked, as JSON
    owner_kind: Mapped[str] = mapped_column(String(10))
    owner_user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    owner_name: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(10), default="queued")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[int | None] = mapped_column(Integer, default=None)
    message: Mapped[str] = mapped_column(Text, default="")
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None, index=True)


class JobFile(Base):
    """A result file of a finished job: its name in `urls`, its media type and size."""

    __tablename__ = "async_job_file"
    __table_args__ = (UniqueConstraint("job_key", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_key: Mapped[str] = mapped_column(ForeignKey("async_job.key", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    chunks: Mapped[int] = mapped_column(Integer, default=0)


class JobChunk(Base):
    """Up to CHUNK_BYTES of a result file; `seq` counts from 0."""

    __tablename__ = "async_job_chunk"

    file_id: Mapped[int] = mapped_column(
        ForeignKey("async_job_file.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)

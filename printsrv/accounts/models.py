"""The accounts domain's tables: idempotency keys, the first answer to a money-changing POST
per caller and key (`printsrv.accounts.idempotency`; migration 0005_idempotency, branch
"idempotency"); and scheduled quotas, a group's allowance and the record of every credit
(`printsrv.accounts.quotas`; migration 0012_quotas, branch "quotas").
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from financial.schema import MoneyType
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


QUOTA_PERIODS = ("daily", "weekly", "monthly")

QUOTA_LOCK = "printsrv.quota-allocation"
"""The advisory lock that serialises the quota allocator and every change to quota terms
(`printsrv.platform.database.serialise_on`)."""


class GroupQuota(Base):
    """A group's scheduled quota: `amount` for every member, once per `period`.

    `set_at` is when the quota was (last) set: the first credit is for the first period
    that starts after it. `credited_through` is the start of the latest period allocated to
    the group (NULL before the first), so a run knows which periods are still due and a
    member who joins later gets only the periods after that.
    """

    __tablename__ = "group_quota"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("period IN ('daily', 'weekly', 'monthly')", name="period"),
        CheckConstraint(
            "max_accumulation IS NULL OR max_accumulation >= amount",
            name="max_accumulation_not_below_amount",
        ),
    )

    group_id: Mapped[int] = mapped_column(
        ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True
    )
    amount: Mapped[Decimal] = mapped_column(MoneyType())
    period: Mapped[str] = mapped_column(String(7))
    max_accumulation: Mapped[Decimal | None] = mapped_column(MoneyType(), default=None)
    set_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    set_by: Mapped[str] = mapped_column(String(255), default="")
    credited_through: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class QuotaCredit(Base):
    """One member's quota of one group for one period: credited `amount`, or 0 when the
    member's balance was at the group's max-accumulation.

    The primary key makes the credit exactly-once: the row is inserted in the transaction
    that writes the QUOTA ledger row, so a second run, on this machine or another, finds it
    (or waits for it) and credits nothing. `account_id` is the member's USER account.

    No foreign keys: the rows are written 100,000 at a time, and checking two keys per row
    took longer than writing the rows (bench/quota.py). They are a record of credits made,
    like ledger rows, which also outlive their group (groups are deleted, users only ever
    marked deleted or renamed).
    """

    __tablename__ = "quota_credit"

    group_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Indexed (migration 0023): each allocator round prunes the oldest rows in a batch.
    period_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True, index=True)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(MoneyType())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

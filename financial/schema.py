"""The accounting tables: accounts and their append-only transaction ledger.

Design overview
---------------
``account``
    One row per USER, GROUP or SHARED account, unique by (type, name). SHARED accounts
    may sit under a top-level SHARED parent. Each has a ``balance``, a credit-limit
    policy (``NONE``: no credit, the balance may not go below zero; ``DEFAULT``: the
    limit the application configures; ``INDIVIDUAL``: ``credit_limit``) and a
    ``disabled`` flag.
``account_trx``
    The ledger. Every change of a balance is one row here, written in the same database
    transaction as the balance (see :mod:`financial.ledger`). Rows are never updated or
    deleted; a refund is a new row pointing at what it reverses (``reversal_of_id``,
    unique, so a row is reversed at most once) and a transfer is two rows pointing at
    each other (``twin_id``).

The invariant, checked by :func:`financial.checks.verify`: for every account,
``balance == SUM(account_trx.amount)``, and each row's ``balance_after`` is the balance
right after it was written.

Money columns use :class:`MoneyType`: ``NUMERIC(18, 6)`` on PostgreSQL, a ``BIGINT`` of
micro-units on SQLite (which has no exact decimal type), so ``SUM()`` is exact on both.
Times use :class:`UTCDateTime`: timezone-aware in Python, stored in UTC.

Everything here is plain Table/Column/Index/CheckConstraint/ForeignKey so that Alembic
autogenerate reproduces it; the constraint names come from :data:`metadata`'s naming
convention.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from financial.money import PLACES, ZERO, money

__all__ = [
    "Account",
    "AccountTrx",
    "AccountType",
    "ActorKind",
    "CreditLimitPolicy",
    "MoneyType",
    "TrxType",
    "UTCDateTime",
    "metadata",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
"""The accounting core's own MetaData; printsrv's Alembic targets it beside its own."""


class AccountType(StrEnum):
    """The kinds of account."""

    USER = "USER"
    GROUP = "GROUP"
    SHARED = "SHARED"


class CreditLimitPolicy(StrEnum):
    """How far below zero an account may be charged."""

    NONE = "NONE"
    """No credit: a charge may not take the balance below zero."""
    DEFAULT = "DEFAULT"
    """The application's default credit limit (passed in by the caller)."""
    INDIVIDUAL = "INDIVIDUAL"
    """The account's own ``credit_limit``."""


class TrxType(StrEnum):
    """The kinds of ledger row (SavaPage's names)."""

    ADJUST = "ADJUST"
    DEPOSIT = "DEPOSIT"
    GATEWAY = "GATEWAY"
    INITIAL = "INITIAL"
    PDF_OUT = "PDF_OUT"
    PRINT_IN = "PRINT_IN"
    PRINT_OUT = "PRINT_OUT"
    PURCHASE = "PURCHASE"
    QUOTA = "QUOTA"
    """A scheduled allowance: a group's quota credited to a member for one period."""
    TRANSFER = "TRANSFER"
    VOUCHER = "VOUCHER"


class ActorKind(StrEnum):
    """Who wrote a ledger row."""

    ADMIN = "admin"
    USER = "user"
    SYSTEM = "system"


def _in(column: str, enum: type[StrEnum]) -> str:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return f"{column} IN ({values})"


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class MoneyType(TypeDecorator[Decimal]):
    """An amount: ``NUMERIC(18, 6)`` on PostgreSQL, ``BIGINT`` micro-units on SQLite.

    Python values are always six-place ``Decimal`` (bound values go through
    :func:`financial.money.money`, so floats are refused). Expressions such as
    ``Account.balance + amount`` and ``func.sum(AccountTrx.amount)`` keep this type, so
    their results come back as ``Decimal`` on both back-ends.
    """

    impl = Numeric(18, PLACES)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        """Pick the storage type for ``dialect``."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(18, PLACES, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Turn an amount into what ``dialect`` stores."""
        if value is None:
            return None
        amount = money(value)
        if dialect.name == "sqlite":
            return int(amount.scaleb(PLACES))
        return amount

    def process_literal_param(self, value: Any, dialect: Dialect) -> str:
        """Render an amount as an SQL literal for ``dialect``."""
        return str(self.process_bind_param(value, dialect))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """Turn what ``dialect`` stored back into a six-place ``Decimal``."""
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-PLACES)
        if isinstance(value, Decimal):  # NUMERIC(18, 6) and its SUM keep six places
            return value
        return money(Decimal(value))

    @property
    def python_type(self) -> type[Decimal]:
        """Amounts are ``Decimal``."""
        return Decimal

    def __repr__(self) -> str:
        return "MoneyType()"


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time: aware ``datetime`` in Python, stored in UTC.

    PostgreSQL stores ``TIMESTAMP WITH TIME ZONE``; SQLite stores the UTC wall time as
    text. Naive datetimes are refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC (naive UTC on SQLite)."""
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"Time {value!r} must be a timezone-aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return the stored time as an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        """Times are ``datetime``."""
        return datetime

    def __repr__(self) -> str:
        return "UTCDateTime()"


_TRX_ID = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base bound to the accounting core's :data:`metadata`."""

    metadata = metadata


class Account(Base):
    """A USER, GROUP or SHARED account.

    Attributes: ``id``; ``account_type`` (:class:`AccountType`); ``name`` (lower-case
    for USER); ``parent_id`` (SHARED only: the top-level SHARED account it belongs to);
    ``balance``; ``credit_limit_policy`` (:class:`CreditLimitPolicy`); ``credit_limit``
    (set exactly when the policy is INDIVIDUAL, never negative); ``disabled``;
    ``created_at`` (aware UTC).
    """

    __tablename__ = "account"
    __table_args__ = (
        UniqueConstraint("account_type", "name"),
        CheckConstraint(_in("account_type", AccountType), name="account_type"),
        CheckConstraint(_in("credit_limit_policy", CreditLimitPolicy), name="credit_limit_policy"),
        CheckConstraint(
            "credit_limit IS NULL OR credit_limit >= 0", name="credit_limit_not_negative"
        ),
        CheckConstraint(
            "(credit_limit_policy = 'INDIVIDUAL') = (credit_limit IS NOT NULL)",
            name="credit_limit_matches_policy",
        ),
        CheckConstraint("parent_id IS NULL OR account_type = 'SHARED'", name="parent_only_shared"),
        CheckConstraint("name <> ''", name="name_not_empty"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_type: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(255))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    balance: Mapped[Decimal] = mapped_column(MoneyType(), default=ZERO, server_default=text("0"))
    credit_limit_policy: Mapped[str] = mapped_column(
        String(10), default=CreditLimitPolicy.NONE.value, server_default="NONE"
    )
    credit_limit: Mapped[Decimal | None] = mapped_column(MoneyType())
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    parent: Mapped[Account | None] = relationship(remote_side=[id])

    @property
    def label(self) -> str:
        """``TYPE/name``, as messages show the account."""
        return f"{self.account_type}/{self.name}"

    def __repr__(self) -> str:
        return f"<Account {self.id} {self.label} balance={self.balance}>"


class AccountTrx(Base):
    """One row of the append-only ledger.

    Attributes: ``id``; ``account_id``; ``trx_type`` (:class:`TrxType`); ``amount``
    (signed, never zero: positive adds to the balance); ``balance_after`` (the account's
    balance right after this row); ``comment``; ``actor_kind`` (:class:`ActorKind`) and
    ``actor_name``; ``created_at`` (aware UTC); ``twin_id`` (TRANSFER only: the other
    leg); ``reversal_of_id`` (the row this one reverses, at most one reversal per row);
    ``document_id`` (printsrv's document, no foreign key); ``reference`` (free text such
    as a payment id).
    """

    __tablename__ = "account_trx"
    __table_args__ = (
        CheckConstraint(_in("trx_type", TrxType), name="trx_type"),
        CheckConstraint(_in("actor_kind", ActorKind), name="actor_kind"),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        CheckConstraint("twin_id IS NULL OR trx_type = 'TRANSFER'", name="twin_only_transfer"),
        CheckConstraint("twin_id IS NULL OR twin_id <> id", name="twin_not_self"),
        CheckConstraint("reversal_of_id IS NULL OR reversal_of_id <> id", name="reversal_not_self"),
        Index("ix_account_trx_account_id_created_at", "account_id", "created_at"),
        Index("ix_account_trx_created_at", "created_at"),
        Index("ix_account_trx_trx_type", "trx_type"),
        # Sums of one type over a time range (printsrv's admin dashboard: money spent per
        # day) read this index alone, never the table (migration 0020_admin_dashboard).
        Index("ix_account_trx_trx_type_created_at", "trx_type", "created_at", "amount"),
    )

    id: Mapped[int] = mapped_column(_TRX_ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    trx_type: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal] = mapped_column(MoneyType())
    balance_after: Mapped[Decimal] = mapped_column(MoneyType())
    comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    actor_kind: Mapped[str] = mapped_column(String(8))
    actor_name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    twin_id: Mapped[int | None] = mapped_column(_TRX_ID, ForeignKey("account_trx.id"), unique=True)
    reversal_of_id: Mapped[int | None] = mapped_column(
        _TRX_ID, ForeignKey("account_trx.id"), unique=True
    )
    document_id: Mapped[int | None] = mapped_column(BigInteger)
    reference: Mapped[str | None] = mapped_column(String(255))

    account: Mapped[Account] = relationship()

    def __repr__(self) -> str:
        return (
            f"<AccountTrx {self.id} account={self.account_id} {self.trx_type} "
            f"{self.amount} -> {self.balance_after}>"
        )

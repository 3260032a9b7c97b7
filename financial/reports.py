"""Transaction reports: a validated selection, streamed out as CSV or laid out as PDF.

:class:`TransactionFilter` is the selection of SavaPage's ``/reports/accounttrx``: an
account type, optionally one account, a comment snippet, a transaction type and an
inclusive time range, sorted by date or type. :func:`iter_csv` and :func:`write_pdf`
check the selection (and that a named account exists) when called, before producing a
byte, then read the ledger through a server-side cursor in batches, so a report over a
million rows never holds them all in memory. Keep the session's transaction open until
the CSV iterator is exhausted or closed.

Both formats show, per row: the time with its offset in the caller's time zone, account
type, account name, transaction type, amount, balance after, comment, actor and
reference.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from decimal import Decimal
from enum import StrEnum
from typing import Any, BinaryIO

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from financial._pdf import PdfLayout
from financial.accounts import account_type_of, get_account, normalise_name
from financial.errors import InvalidAccount, InvalidSelection
from financial.schema import Account, AccountTrx, AccountType, TrxType

__all__ = [
    "CSV_HEADER",
    "SortField",
    "TransactionFilter",
    "count_transactions",
    "end_of_day",
    "iter_csv",
    "start_of_day",
    "write_pdf",
]

CSV_HEADER = (
    "date",
    "account_type",
    "account_name",
    "transaction_type",
    "amount",
    "balance_after",
    "comment",
    "actor",
    "reference",
)
"""The CSV report's header row."""

BATCH_ROWS = 2000
"""Rows fetched from the database per batch, and per CSV chunk."""

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class SortField(StrEnum):
    """What a report is sorted by (then by time and id)."""

    TRX_DATE = "TRX_DATE"
    TRX_TYPE = "TRX_TYPE"


@dataclass(frozen=True, slots=True)
class TransactionFilter:
    """Which ledger rows a report shows, and in which order.

    Attributes:
        account_type: ``USER``, ``GROUP`` or ``SHARED``.
        account_name: one account; optional for USER (all users), required otherwise.
            USER names are lower-cased.
        text: only rows whose comment contains this, ignoring case; ``None`` for all.
        trx_type: only rows of this type (:class:`~financial.schema.TrxType`).
        date_from: only rows at or after this aware datetime (see :func:`start_of_day`).
        date_to: only rows at or before this aware datetime (see :func:`end_of_day`).
        sort_field: ``TRX_DATE`` (default) or ``TRX_TYPE``.
        ascending: sort order, ascending by default.

    Raises :class:`InvalidSelection` naming the bad value.
    """

    account_type: str = AccountType.USER.value
    account_name: str | None = None
    text: str | None = None
    trx_type: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    sort_field: str = SortField.TRX_DATE.value
    ascending: bool = True

    def __post_init__(self) -> None:
        kind = account_type_of(self.account_type, InvalidSelection)
        object.__setattr__(self, "account_type", kind.value)
        if self.account_name is not None and self.account_name.strip() == "":
            object.__setattr__(self, "account_name", None)
        if self.account_name is None:
            if kind is not AccountType.USER:
                raise InvalidSelection(f"A {kind} report needs an account name")
        else:
            try:
                name = normalise_name(kind, self.account_name)
            except InvalidAccount as exc:
                raise InvalidSelection(exc.message) from None
            object.__setattr__(self, "account_name", name)
        if self.text == "":
            object.__setattr__(self, "text", None)
        if self.trx_type is not None:
            try:
                object.__setattr__(self, "trx_type", TrxType(self.trx_type).value)
            except ValueError:
                raise InvalidSelection(
                    f"Transaction type '{self.trx_type}' is not one of {', '.join(TrxType)}"
                ) from None
        try:
            object.__setattr__(self, "sort_field", SortField(self.sort_field).value)
        except ValueError:
            raise InvalidSelection(
                f"Sort field '{self.sort_field}' is not one of TRX_DATE, TRX_TYPE"
            ) from None
        if not isinstance(self.ascending, bool):
            raise InvalidSelection(f"Sort order {self.ascending!r} is not true or false")
        for label in ("date_from", "date_to"):
            value = getattr(self, label)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise InvalidSelection(f"{label} {value!r} must be a datetime with an offset")
        if self.date_from and self.date_to and self.date_to < self.date_from:
            raise InvalidSelection(
                f"date_to {self.date_to.isoformat()} is before "
                f"date_from {self.date_from.isoformat()}"
            )

    def describe(self, tz: tzinfo) -> str:
        """Return the selection in words, times shown in ``tz``."""
        if self.account_name is not None:
            parts = [f"{self.account_type} account '{self.account_name}'"]
        else:
            parts = [f"all {self.account_type} accounts"]
        if self.trx_type is not None:
            parts.append(f"transaction type {self.trx_type}")
        if self.text is not None:
            parts.append(f"comment containing '{self.text}'")
        if self.date_from is not None:
            parts.append(f"from {_when(self.date_from, tz)}")
        if self.date_to is not None:
            parts.append(f"up to and including {_when(self.date_to, tz)}")
        order = "date" if self.sort_field == SortField.TRX_DATE else "transaction type"
        parts.append(f"sorted by {order}, {'ascending' if self.ascending else 'descending'}")
        return "; ".join(parts)


def start_of_day(day: date, tz: tzinfo) -> datetime:
    """Return the first instant of ``day`` in ``tz``: the inclusive ``date_from``."""
    return datetime.combine(day, time.min, tz)


def end_of_day(day: date, tz: tzinfo) -> datetime:
    """Return the last instant (23:59:59.999999) of ``day`` in ``tz``: the inclusive
    ``date_to``."""
    return datetime.combine(day, time.max, tz)


def iter_csv(session: Session, flt: TransactionFilter, *, tz: tzinfo) -> Iterator[bytes]:
    """Return an iterator of UTF-8 CSV chunks: the header, then one row per transaction.

    Quoting follows RFC 4180 (CRLF line ends). Text cells a spreadsheet would run as a
    formula (starting with ``= + - @``, tab or CR) get a leading apostrophe; amounts are
    numbers and stay as they are (``-2.500000``). The selection and the named account are
    checked now (raising :class:`InvalidSelection` or
    :class:`~financial.errors.AccountNotFound`); rows are read lazily as the iterator is
    consumed, in batches of :data:`BATCH_ROWS`.
    """
    statement = _statement(session, flt)
    return _csv_chunks(session, statement, tz)


def write_pdf(
    session: Session,
    flt: TransactionFilter,
    out: BinaryIO,
    *,
    tz: tzinfo,
    title: str,
    generated_at: datetime,
    currency: str,
    on_rows: Callable[[int], None] | None = None,
) -> None:
    """Write the report as PDF to ``out``.

    The document has the title, the selection in words, the generation time (in ``tz``),
    a table whose header row starts every page, "page N of M" on every page and, at the
    end, the count and sum per transaction type. Amounts are in ``currency`` (an ISO 4217
    code, shown in the headings). Rows are read in batches and laid out a page at a time.
    Checks the selection first, like :func:`iter_csv`. ``on_rows``, when given, is called
    with the number of rows read so far after each batch (a progress report; an exception
    it raises stops the layout).
    """
    statement = _statement(session, flt)
    layout = PdfLayout(
        title=title,
        selection=flt.describe(tz),
        generated=_when(generated_at, tz),
        currency=currency,
        header=(
            "Date",
            "Type",
            "Account",
            "Transaction",
            f"Amount ({currency})",
            f"Balance ({currency})",
            "Comment",
            "Actor",
            "Reference",
        ),
    )
    rows = (_pdf_row(row, tz) for row in _rows(session, statement, on_rows))
    layout.build(out, rows)


def count_transactions(session: Session, flt: TransactionFilter) -> int:
    """How many transactions the selection picks (checks it first, like :func:`iter_csv`)."""
    statement = _statement(session, flt).order_by(None).subquery()
    return int(session.scalar(select(func.count()).select_from(statement)) or 0)


def _statement(session: Session, flt: TransactionFilter) -> Select[Any]:
    statement = select(
        AccountTrx.created_at,
        Account.account_type,
        Account.name,
        AccountTrx.trx_type,
        AccountTrx.amount,
        AccountTrx.balance_after,
        AccountTrx.comment,
        AccountTrx.actor_kind,
        AccountTrx.actor_name,
        AccountTrx.reference,
    ).join(Account, Account.id == AccountTrx.account_id)
    if flt.account_name is not None:
        account = get_account(session, flt.account_type, flt.account_name)
        statement = statement.where(AccountTrx.account_id == account.id)
    else:
        statement = statement.where(Account.account_type == flt.account_type)
    if flt.text is not None:
        statement = statement.where(AccountTrx.comment.icontains(flt.text, autoescape=True))
    if flt.trx_type is not None:
        statement = statement.where(AccountTrx.trx_type == flt.trx_type)
    if flt.date_from is not None:
        statement = statement.where(AccountTrx.created_at >= flt.date_from)
    if flt.date_to is not None:
        statement = statement.where(AccountTrx.created_at <= flt.date_to)
    keys = [AccountTrx.created_at, AccountTrx.id]
    if flt.sort_field == SortField.TRX_TYPE:
        keys.insert(0, AccountTrx.trx_type)
    return statement.order_by(*(key if flt.ascending else key.desc() for key in keys))


def _batches(session: Session, statement: Select[Any]) -> Iterator[Sequence[Any]]:
    """Yield the result in batches of rows, read through a server-side cursor."""
    result = session.connection().execute(statement.execution_options(yield_per=BATCH_ROWS))
    try:
        yield from result.partitions()
    finally:
        result.close()


def _rows(
    session: Session, statement: Select[Any], on_rows: Callable[[int], None] | None = None
) -> Iterator[Any]:
    done = 0
    for batch in _batches(session, statement):
        yield from batch
        done += len(batch)
        if on_rows is not None:
            on_rows(done)


def _csv_chunks(session: Session, statement: Select[Any], tz: tzinfo) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    yield buffer.getvalue().encode()
    for batch in _batches(session, statement):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_csv_row(row, tz) for row in batch])
        yield buffer.getvalue().encode()


def _csv_row(row: Any, tz: tzinfo) -> tuple[str, ...]:
    (
        created_at,
        account_type,
        name,
        trx_type,
        amount,
        balance_after,
        comment,
        actor_kind,
        actor_name,
        reference,
    ) = row
    return (
        created_at.astimezone(tz).isoformat(timespec="seconds"),
        account_type,
        _cell(name),
        trx_type,
        format(amount, "f"),
        format(balance_after, "f"),
        _cell(comment),
        _cell(f"{actor_kind}:{actor_name}"),
        _cell(reference),
    )


def _pdf_row(row: Any, tz: tzinfo) -> tuple[str, Decimal, tuple[str, ...]]:
    (
        created_at,
        account_type,
        name,
        trx_type,
        amount,
        balance_after,
        comment,
        actor_kind,
        actor_name,
        reference,
    ) = row
    shown = (
        _when(created_at, tz),
        account_type,
        name,
        trx_type,
        format(amount, "f"),
        format(balance_after, "f"),
        comment,
        f"{actor_kind}:{actor_name}",
        reference or "",
    )
    return trx_type, amount, shown


def _cell(text: str | None) -> str:
    """Neutralise a text cell a spreadsheet would evaluate as a formula."""
    if not text:
        return ""
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def _when(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).isoformat(sep=" ", timespec="seconds")

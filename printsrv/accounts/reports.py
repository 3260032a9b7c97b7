"""Account transaction reports: the selection, the CSV (streamed) and the PDF.

The formats are the core's (`financial.iter_csv`, `financial.write_pdf`); this module maps
names through the aliases, translates errors, and on PostgreSQL streams the CSV through a
fast path that produces the same bytes:

`financial.iter_csv` formats every cell in Python, which costs about 20 s per million
rows. On PostgreSQL the same bytes come out of `COPY (SELECT ...) TO STDOUT (FORMAT csv)`:
the database renders dates, amounts and RFC 4180 quoting in C, and Python only turns each
row's line end into CRLF. What iter_csv does in Python is done here in SQL:

- the time: shifted into the report's fixed offset, written `2023-01-01T13:00:00+01:00`
  (seconds truncated, as `isoformat(timespec="seconds")` does);
- formula neutralisation: a text cell starting with `= + - @`, tab or CR gets a leading
  apostrophe (the actor cell starts with its kind, `admin:`, so it never needs one);
- empty cells: COPY quotes an empty string (`""`) to tell it from NULL, the csv module
  does not, so empty text goes out as NULL;
- quoting: COPY quotes exactly the cells the csv module quotes (those holding `,`, `"`,
  CR or LF) and doubles quotes the same way.

`tests/unit/accounts/test_accounting_reports.py` checks the output is byte-identical to iter_csv's.
The fast path needs PostgreSQL, a UTF-8 client encoding and a fixed-offset time zone;
`copy_csv` returns None otherwise and iter_csv is used.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timezone, tzinfo
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

import financial
from financial import TransactionFilter
from financial.accounts import get_account
from financial.reports import CSV_HEADER, SortField
from printsrv.accounts.service import financial_errors, parse_account_type, stored_account_name
from printsrv.platform.database import Database
from printsrv.platform.streams import ReadStream
from printsrv.platform.threads import in_thread

__all__ = [
    "CHUNK_ROWS",
    "REPORT_TITLE",
    "copy_csv",
    "csv_report",
    "open_csv_report",
    "pdf_report",
    "pdf_report_file",
    "transaction_filter",
]

REPORT_TITLE = "Account transactions"

CHUNK_ROWS = 1000
"""Rows per chunk handed to the caller (about 100 KiB)."""

_LIKE_ESCAPE = "/"


def _neutralised(column: str) -> str:
    """SQL for a text cell as financial.reports._cell makes it, empty text as NULL."""
    return (
        f"CASE WHEN ascii({column}) IN (61, 43, 45, 64, 9, 13) "  # = + - @ tab CR
        f"THEN '''' || {column} ELSE NULLIF({column}, '') END"
    )


_COLUMNS = ", ".join(
    [
        # `AT TIME ZONE 'UTC'` gives the UTC wall time; adding the offset gives the report's.
        # Its text form is "YYYY-MM-DD HH:MM:SS[.ffffff]" under DateStyle ISO (set below).
        "replace(left(((t.created_at AT TIME ZONE 'UTC') + %(shift)s::interval)::text, 19), "
        "' ', 'T') || %(suffix)s",
        "a.account_type",
        _neutralised("a.name"),
        "t.trx_type",
        "t.amount",
        "t.balance_after",
        _neutralised("t.comment"),
        "t.actor_kind || ':' || t.actor_name",
        _neutralised("t.reference"),
    ]
)


def copy_csv(session: Session, flt: TransactionFilter, *, tz: tzinfo) -> Iterator[bytes] | None:
    """The CSV report as iter_csv writes it, formatted by PostgreSQL; None when not possible.

    Like iter_csv, the selection's account is looked up now (AccountNotFound) and rows
    are read only as the iterator is consumed. Keep the session's transaction open until
    the iterator is exhausted or closed; closing it early cancels the COPY.
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql" or not isinstance(tz, timezone):
        return None
    raw = connection.connection.driver_connection
    if raw is None or raw.info.encoding != "utf-8":
        return None
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if flt.account_name is not None:
        params["account_id"] = get_account(session, flt.account_type, flt.account_name).id
        conditions.append("t.account_id = %(account_id)s")
    else:
        params["account_type"] = flt.account_type
        conditions.append("a.account_type = %(account_type)s")
    if flt.text is not None:
        # As SQLAlchemy's icontains(autoescape=True) renders it for iter_csv.
        params["text"] = (
            flt.text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
            .replace("%", _LIKE_ESCAPE + "%")
            .replace("_", _LIKE_ESCAPE + "_")
        )
        conditions.append("t.comment ILIKE '%%' || %(text)s || '%%' ESCAPE '/'")
    if flt.trx_type is not None:
        params["trx_type"] = flt.trx_type
        conditions.append("t.trx_type = %(trx_type)s")
    if flt.date_from is not None:
        params["date_from"] = flt.date_from
        conditions.append("t.created_at >= %(date_from)s")
    if flt.date_to is not None:
        params["date_to"] = flt.date_to
        conditions.append("t.created_at <= %(date_to)s")
    keys = ["t.created_at", "t.id"]
    if flt.sort_field == SortField.TRX_TYPE:
        keys.insert(0, "t.trx_type")
    direction = "" if flt.ascending else " DESC"
    offset = tz.utcoffset(None)
    assert offset is not None  # a datetime.timezone always has one
    params["shift"] = f"{int(offset.total_seconds())} seconds"
    params["suffix"] = datetime(2000, 1, 1, tzinfo=tz).isoformat()[19:]
    # Only constants of this module are pasted in; every value goes through `params`.
    statement = (
        f"COPY (SELECT {_COLUMNS} FROM account_trx t JOIN account a ON a.id = t.account_id "  # noqa: S608
        f"WHERE {' AND '.join(conditions)} "
        f"ORDER BY {', '.join(key + direction for key in keys)}) TO STDOUT (FORMAT csv)"
    )
    return _chunks(raw, statement, params)


def transaction_filter(
    session: Session,
    *,
    account_type: str,
    account_name: str | None = None,
    text: str | None = None,
    trx_type: str | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    sort_field: str = "TRX_DATE",
    ascending: bool = True,
) -> TransactionFilter:
    """The report selection, with a USER account name mapped through the aliases.

    InvalidInput for an unknown type, a missing GROUP/SHARED name, `date_to` before
    `date_from` ...
    """
    if account_name is not None and account_name.strip():
        kind = parse_account_type(account_type, param="select.account_type")
        account_name = stored_account_name(session, kind, account_name)
    with financial_errors():
        return TransactionFilter(
            account_type=account_type,
            account_name=account_name,
            text=text,
            trx_type=trx_type,
            date_from=date_from,
            date_to=date_to,
            sort_field=sort_field,
            ascending=ascending,
        )


def csv_report(session: Session, selection: TransactionFilter, *, tz: tzinfo) -> Iterator[bytes]:
    """The CSV report as an iterator of UTF-8 chunks, streamed from the database.

    On PostgreSQL the database formats the rows (`copy_csv`); elsewhere `financial.iter_csv`
    does. The bytes are the same. The selection and a named account are checked before the
    first chunk (NotFound, InvalidInput). Keep the session open until the iterator is
    exhausted or closed.
    """
    with financial_errors():
        fast = copy_csv(session, selection, tz=tz)
        return fast if fast is not None else financial.iter_csv(session, selection, tz=tz)


def pdf_report(
    session: Session,
    selection: TransactionFilter,
    out: BinaryIO,
    *,
    tz: tzinfo,
    currency: str,
    generated_at: datetime,
) -> None:
    """Write the PDF report to `out` (title, selection in words, paged table, totals)."""
    with financial_errors():
        financial.write_pdf(
            session,
            selection,
            out,
            tz=tz,
            title=REPORT_TITLE,
            generated_at=generated_at,
            currency=currency,
        )


async def open_csv_report(db: Database, select: dict[str, Any], *, tz: tzinfo) -> ReadStream:
    """Start streaming the CSV report of the transactions `select` picks (the keywords of
    `transaction_filter`), times shown in `tz`.

    The selection is checked before this returns (NotFound, InvalidInput), so a refusal is
    answered before any byte of the report; the caller must `close()` the stream however
    its reading ends.
    """

    def chunks(session: Session) -> Iterator[bytes]:
        return csv_report(session, transaction_filter(session, **select), tz=tz)

    return await ReadStream.open(db, chunks)


async def pdf_report_file(
    db: Database, select: dict[str, Any], *, tz: tzinfo, currency: str
) -> BinaryIO:
    """The PDF report of the transactions `select` picks, laid out off the event loop into
    an anonymous temporary file (nothing to clean up), rewound; the caller closes it."""

    def lay_out() -> BinaryIO:
        out = tempfile.TemporaryFile(prefix="printsrv-report-")  # noqa: SIM115 (returned open)
        try:
            with db.read() as session:
                selection = transaction_filter(session, **select)
                pdf_report(
                    session,
                    selection,
                    out,
                    tz=tz,
                    currency=currency,
                    generated_at=datetime.now(UTC),
                )
            out.seek(0)
            return out
        except BaseException:
            out.close()
            raise

    return await in_thread(lay_out)


def _header() -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(CSV_HEADER)
    return buffer.getvalue().encode()


def _chunks(raw: Any, statement: str, params: dict[str, Any]) -> Iterator[bytes]:
    yield _header()
    with raw.cursor() as cursor:
        # Only for this transaction: the text form of timestamps the date column relies on.
        cursor.execute("SET LOCAL DateStyle = 'ISO'")
        with cursor.copy(statement, params) as copy:
            rows: list[Any] = []
            # PostgreSQL sends one COPY message per row, ending in LF; a LF inside a cell is
            # quoted and stays. Only the row end becomes CRLF, as the csv module writes it.
            for row in copy:
                rows.append(row[:-1])
                if len(rows) == CHUNK_ROWS:
                    rows.append(b"")
                    yield b"\r\n".join(rows)
                    rows = []
            if rows:
                rows.append(b"")
                yield b"\r\n".join(rows)

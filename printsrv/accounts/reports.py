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

What is left for Python is reading the COPY's messages (one per row) from libpq: psycopg's
`Copy.read()` takes its wait machinery for each, so `_copy_rows` takes every message libpq
already holds with one call each and waits only when it holds none.

`tests/unit/accounts/test_accounting_reports.py` checks the output is byte-identical to iter_csv's.
The fast path needs PostgreSQL, a UTF-8 client encoding and a fixed-offset time zone;
`copy_csv` returns None otherwise and iter_csv is used.
"""

from __future__ import annotations

import csv
import io
import json
import re
import select
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any, BinaryIO, TypeVar

from psycopg import errors as psycopg_errors
from psycopg import pq
from sqlalchemy.orm import Session

import financial
from financial import TransactionFilter, end_of_day, start_of_day
from financial.accounts import get_account
from financial.reports import CSV_HEADER, SortField
from printsrv.accounts.service import financial_errors, parse_account_type, stored_account_name
from printsrv.errors import InvalidInput
from printsrv.platform.database import Database
from printsrv.platform.json_numbers import decimal_number
from printsrv.platform.streams import ReadStream
from printsrv.platform.threads import in_thread

__all__ = [
    "CHUNK_ROWS",
    "REPORT_TITLE",
    "ReportRequest",
    "checked_selection",
    "copy_csv",
    "count_report_rows",
    "csv_report",
    "open_csv_report",
    "pdf_report",
    "pdf_report_file",
    "strict_json",
    "transaction_filter",
]

REPORT_TITLE = "Account transactions"

CHUNK_ROWS = 1000
"""Rows per chunk handed to the caller (about 100 KiB)."""

_LIKE_ESCAPE = "/"


# --- the request: the contract's JSON selection --------------------------------------------------

_TOP_FIELDS = frozenset({"select", "sort", "media_type"})
_SELECT_FIELDS = frozenset(
    {"account_type", "account_name", "text", "trx_type", "date_from", "date_to"}
)
_DATE_FIELDS = frozenset({"ccyy", "mm", "dd", "zzz"})
_SORT_FIELDS = frozenset({"field", "ascending"})
_MEDIA_TYPES = ("CSV", "PDF")
T = TypeVar("T")
_OFFSET = re.compile(r"([+-])([0-9]{2})(?::?([0-9]{2}))?")


@dataclass(frozen=True)
class ReportRequest:
    """A parsed report request: the selection (keywords of `transaction_filter`), the media
    type and the time zone the report shows times in.

    The REST report (`POST /restful/v1/reports/accounttrx`) parses its body with
    `parse_body`; the `report.accounttrx` job parses its `argument` with `parse`.
    """

    select: dict[str, Any]
    media_type: str
    tz: timezone

    @classmethod
    def parse_body(cls, body: bytes) -> ReportRequest:
        """Parse and check a JSON body; InvalidInput naming the bad field."""
        return cls.parse(strict_json(body, '{"select": {...}}'))

    @classmethod
    def parse(cls, document: Any, *, where: str = "body") -> ReportRequest:
        """Check a decoded request; InvalidInput naming the bad field, prefixed with
        `where` unless it is the body itself ("argument.select.date_from")."""
        p = "" if where == "body" else f"{where}."
        document = _fields(where, document, _TOP_FIELDS)
        select = _fields(f"{p}select", _or(document.get("select"), {}), _SELECT_FIELDS)
        sort = _fields(f"{p}sort", _or(document.get("sort"), {}), _SORT_FIELDS)
        media_type = _or(_text(f"{p}media_type", document.get("media_type")), "CSV")
        if media_type not in _MEDIA_TYPES:
            raise _bad(f"{p}media_type", f"has value {media_type!r}: not one of CSV, PDF")
        date_from = _day(f"{p}select.date_from", select.get("date_from"))
        date_to = _day(f"{p}select.date_to", select.get("date_to"))
        ascending = _or(sort.get("ascending"), True)
        if not isinstance(ascending, bool):
            raise _bad(f"{p}sort.ascending", "must be true or false")
        selection = {
            "account_type": _or(
                _text(f"{p}select.account_type", select.get("account_type")), "USER"
            ),
            "account_name": _text(f"{p}select.account_name", select.get("account_name")),
            "text": _text(f"{p}select.text", select.get("text")),
            "trx_type": _text(f"{p}select.trx_type", select.get("trx_type")),
            "date_from": _in_range(f"{p}select.date_from", start_of_day, date_from),
            "date_to": _in_range(f"{p}select.date_to", end_of_day, date_to),
            "sort_field": _or(_text(f"{p}sort.field", sort.get("field")), "TRX_DATE"),
            "ascending": ascending,
        }
        shown = date_from[1] if date_from else date_to[1] if date_to else UTC
        return cls(selection, media_type, shown)


def _or(value: T | None, default: T) -> T:
    """`value`, or `default` when it is absent or null (an empty string stays, to be refused)."""
    return default if value is None else value


def _bad(field: str, what: str) -> InvalidInput:
    return InvalidInput(f"Field {field!r} {what}", reason=field)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"field {key!r} appears twice")
        result[key] = value
    return result


def strict_json(body: bytes, example: str) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no repeated field, fractions as Decimal.

    InvalidInput for an empty body (naming `example`, the shape expected) or bad JSON.
    """
    if not body.strip():
        raise InvalidInput(f"The body must be a JSON object such as {example}")
    try:
        return json.loads(
            body.decode("utf-8"),
            parse_float=decimal_number,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidInput(f"The body is not valid JSON: {error}") from None
    except RecursionError:
        # `[[[[...` a few thousand deep: the decoder recurses once per level (found by
        # fuzzing: a 500 on every door that reads a JSON body through here).
        raise InvalidInput("The body is not valid JSON: it nests too deeply") from None


def _fields(name: str, value: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(name, "must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        prefix = "" if name == "body" else f"{name}."
        raise _bad(
            f"{prefix}{unknown[0]}", f"is not known (expected: {', '.join(sorted(allowed))})"
        )
    return value


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(name, "must be a string or null")
    if "\x00" in value:  # PostgreSQL refuses NUL in text: once a report broken mid-stream
        raise _bad(name, "contains a NUL character")
    return value


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, "must be a whole number")
    return value


def _day(name: str, value: Any) -> tuple[date, timezone] | None:
    """A `{ccyy, mm, dd, zzz}` object: the day and its UTC offset ("+01", "-05:30", "Z")."""
    if value is None:
        return None
    fields = _fields(name, value, _DATE_FIELDS)
    for part in ("ccyy", "mm", "dd"):
        if part not in fields:
            raise _bad(f"{name}.{part}", "is missing")
    year, month, day = (_integer(f"{name}.{part}", fields[part]) for part in ("ccyy", "mm", "dd"))
    try:
        when = date(year, month, day)
    except (ValueError, OverflowError):  # OverflowError: a number no C long holds
        raise _bad(name, f"is {year:04d}-{month:02d}-{day:02d}: not a date") from None
    return when, _offset(f"{name}.zzz", _text(f"{name}.zzz", fields.get("zzz")) or "Z")


def _in_range(
    name: str, bound: Callable[[date, tzinfo], datetime], day: tuple[date, timezone] | None
) -> datetime | None:
    """The first or last instant of `day` in its offset, refused when it is not a time in
    UTC too (0001-01-01 at +01, 9999-12-31 at -05): the database compares in UTC, and the
    driver's OverflowError came after the CSV answer had started (found by fuzzing)."""
    if day is None:
        return None
    moment = bound(*day)
    try:
        moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _bad(
            name, f"is {day[0].isoformat()} at {moment:%z}: outside the years 1-9999 in UTC"
        ) from None
    return moment


def _offset(name: str, text: str) -> timezone:
    if text in ("Z", "UTC"):
        return UTC
    match = _OFFSET.fullmatch(text)
    if match is None:
        raise _bad(name, f"has value {text!r}: not a UTC offset such as +01, -05:30 or Z")
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    if hours > 18 or minutes > 59 or (hours == 18 and minutes):
        raise _bad(name, f"has value {text!r}: offsets run from -18:00 to +18:00")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if sign == "-" else delta)


# --- the reports ---------------------------------------------------------------------------------


def _neutralised(column: str) -> str:
    """SQL for a text cell as financial.reports._cell makes it, empty text as NULL."""
    return (
        f"CASE WHEN ascii({column}) IN (61, 43, 45, 64, 9, 13) "  # = + - @ tab CR
        f"THEN '''' || {column} ELSE NULLIF({column}, '') END"
    )


_COLUMNS = ", ".join(
    [
        # `AT TIME ZONE 'UTC'` gives the UTC wall time; adding the offset gives the report's.
        # Truncated to the second, its text form is "YYYY-MM-DD HH:MM:SS" under DateStyle
        # ISO (set below); truncating the value cost PostgreSQL a little less (~5%) than
        # cutting the text.
        "replace(date_trunc('second', (t.created_at AT TIME ZONE 'UTC') + %(shift)s::interval)"
        "::text, ' ', 'T') || %(suffix)s",
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
    on_rows: Callable[[int], None] | None = None,
) -> None:
    """Write the PDF report to `out` (title, selection in words, paged table, totals).

    `on_rows`, when given, hears the number of rows laid out so far after each batch.
    """
    with financial_errors():
        financial.write_pdf(
            session,
            selection,
            out,
            tz=tz,
            title=REPORT_TITLE,
            generated_at=generated_at,
            currency=currency,
            on_rows=on_rows,
        )


def checked_selection(session: Session, select: dict[str, Any]) -> TransactionFilter:
    """`transaction_filter`, and the named account looked up (NotFound), so that a report of
    nobody is refused before any work is done for it."""
    selection = transaction_filter(session, **select)
    if selection.account_name is not None:
        with financial_errors():
            get_account(session, selection.account_type, selection.account_name)
    return selection


def count_report_rows(session: Session, selection: TransactionFilter) -> int:
    """How many rows the report of `selection` has (to tell progress)."""
    with financial_errors():
        return financial.reports.count_transactions(session, selection)


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
        # psycopg starts the COPY (and cancels it if this generator is closed early); the
        # rows are read below it, from libpq (see _copy_rows).
        with cursor.copy(statement, params):
            yield from _crlf_chunks(_copy_rows(raw.pgconn))


def _crlf_chunks(batches: Iterator[list[Any]]) -> Iterator[bytes]:
    """CHUNK_ROWS rows at a time, each row ending in CRLF as the csv module writes it.

    PostgreSQL sends one COPY message per row, ending in LF; a LF inside a cell is quoted
    and stays. So when a chunk holds as many LFs as rows (no cell with a line break),
    every LF is a row end and one `replace` does it; otherwise row by row.
    """
    rows: list[Any] = []
    for batch in batches:
        rows += batch
        if len(rows) >= CHUNK_ROWS:
            whole = len(rows) - len(rows) % CHUNK_ROWS
            for start in range(0, whole, CHUNK_ROWS):
                yield _crlf(rows[start : start + CHUNK_ROWS])
            rows = rows[whole:]
    if rows:
        yield _crlf(rows)


def _crlf(rows: list[Any]) -> bytes:
    chunk = b"".join(rows)
    if chunk.count(b"\n") == len(rows):
        return chunk.replace(b"\n", b"\r\n")
    return b"".join(bytes(row[:-1]) + b"\r\n" for row in rows)


def _copy_rows(pgconn: Any) -> Iterator[list[Any]]:
    """The rows of a started COPY TO, in batches of those libpq already holds.

    psycopg's `Copy.read()` goes through its wait machinery once per row, which costs more
    than PostgreSQL takes to produce the row (about 1 s of CPU per million). Here each
    message libpq has buffered is taken with one call, and the thread waits (in poll,
    without the GIL) only when the buffer is empty. The COPY's final result is read before
    the last batch is handed out, so psycopg's Copy finds nothing left to read however the
    consumer stops; an error the server sends instead is raised as psycopg raises it.
    """
    waiting = select.poll()
    waiting.register(pgconn.socket, select.POLLIN)
    get = pgconn.get_copy_data
    while True:
        batch: list[Any] = []
        while (received := get(1))[0] > 0:
            batch.append(received[1])
        if received[0] < 0:  # -1: the COPY is over, its result follows
            _copy_result(pgconn, waiting)
            if batch:
                yield batch
            return
        if batch:
            yield batch
        waiting.poll()
        pgconn.consume_input()


def _copy_result(pgconn: Any, waiting: select.poll) -> None:
    """Read the results after the COPY's data; the server's error, if it sent one."""
    while pgconn.is_busy():
        waiting.poll()
        pgconn.consume_input()
    failure = None
    while (result := pgconn.get_result()) is not None:
        if result.status != pq.ExecStatus.COMMAND_OK and failure is None:
            failure = psycopg_errors.error_from_result(result, encoding="utf-8")
    if failure is not None:
        raise failure

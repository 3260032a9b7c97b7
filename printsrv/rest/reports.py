"""REST reports: POST /reports/accounttrx, the account transactions as CSV (streamed) or PDF.

The body is the contract's JSON selection:

    {"select": {"account_type": "USER", "account_name": "rijk", "text": null,
                "trx_type": "PRINT_OUT",
                "date_from": {"ccyy": 2023, "mm": 1, "dd": 1, "zzz": "+01"},
                "date_to": {"ccyy": 2023, "mm": 6, "dd": 1, "zzz": "+02"}},
     "sort": {"field": "TRX_DATE", "ascending": true},
     "media_type": "CSV"}

`date_from` counts from the first instant of its day and `date_to` to the last instant of
its day, each in its own `zzz` offset; times in the report are shown in the offset of
`date_from` (else `date_to`, else UTC). Unknown fields or values, a malformed body and
`date_to` before `date_from` are answered 400 in the contract's error envelope.

The reports themselves are `printsrv/accounts/reports.py`'s: a CSV report over a million
transactions is never held in memory but streamed from a read session on a thread of its own
(`platform/streams.py`), closed with its session however the response ends, a client that
goes away included.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, timedelta, timezone
from decimal import Decimal
from typing import IO, Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from financial import end_of_day, start_of_day
from printsrv.accounts import reports as accounting_reports
from printsrv.accounts import service as accounting
from printsrv.errors import InvalidInput
from printsrv.http import installation_of, read_body
from printsrv.platform.threads import iterate_in_thread
from printsrv.rest.guards import require_admin

MAX_BODY = 64 * 1024
PDF_CHUNK = 64 * 1024
_TOP_FIELDS = frozenset({"select", "sort", "media_type"})
_SELECT_FIELDS = frozenset(
    {"account_type", "account_name", "text", "trx_type", "date_from", "date_to"}
)
_DATE_FIELDS = frozenset({"ccyy", "mm", "dd", "zzz"})
_SORT_FIELDS = frozenset({"field", "ascending"})
_MEDIA_TYPES = ("CSV", "PDF")
T = TypeVar("T")
_OFFSET = re.compile(r"([+-])([0-9]{2})(?::?([0-9]{2}))?")


async def account_transactions(request: Request) -> Response:
    """POST /reports/accounttrx: the selected ledger rows as CSV or PDF (admin)."""
    require_admin(request)
    report = _Report.parse(await read_body(request, MAX_BODY))
    installation = installation_of(request)
    if report.media_type == "PDF":
        settings = accounting.settings_of(installation.config.snapshot())
        pdf = await accounting_reports.pdf_report_file(
            installation.db, report.select, tz=report.tz, currency=settings.currency
        )
        return _pdf_response(pdf)
    stream = await accounting_reports.open_csv_report(installation.db, report.select, tz=report.tz)
    return _ClosingStreamingResponse(
        stream,
        on_close=stream.close,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="AccountTrxList.csv"'},
    )


# --- the request ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Report:
    """A parsed report request: the selection (keywords of accounting_reports.transaction_filter),
    the media type and the time zone the report shows times in."""

    select: dict[str, Any]
    media_type: str
    tz: timezone

    @classmethod
    def parse(cls, body: bytes) -> _Report:
        """Parse and check the JSON body; InvalidInput naming the bad field."""
        document = _fields("body", _json(body), _TOP_FIELDS)
        select = _fields("select", _or(document.get("select"), {}), _SELECT_FIELDS)
        sort = _fields("sort", _or(document.get("sort"), {}), _SORT_FIELDS)
        media_type = _or(_text("media_type", document.get("media_type")), "CSV")
        if media_type not in _MEDIA_TYPES:
            raise _bad("media_type", f"has value {media_type!r}: not one of CSV, PDF")
        date_from = _day("select.date_from", select.get("date_from"))
        date_to = _day("select.date_to", select.get("date_to"))
        ascending = _or(sort.get("ascending"), True)
        if not isinstance(ascending, bool):
            raise _bad("sort.ascending", "must be true or false")
        selection = {
            "account_type": _or(_text("select.account_type", select.get("account_type")), "USER"),
            "account_name": _text("select.account_name", select.get("account_name")),
            "text": _text("select.text", select.get("text")),
            "trx_type": _text("select.trx_type", select.get("trx_type")),
            "date_from": start_of_day(*date_from) if date_from else None,
            "date_to": end_of_day(*date_to) if date_to else None,
            "sort_field": _or(_text("sort.field", sort.get("field")), "TRX_DATE"),
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


def _json(body: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no repeated field, fractions as Decimal."""
    if not body.strip():
        raise InvalidInput('The body must be a JSON object such as {"select": {...}}')
    try:
        return json.loads(
            body.decode("utf-8"),
            parse_float=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidInput(f"The body is not valid JSON: {error}") from None


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
    except ValueError:
        raise _bad(name, f"is {year:04d}-{month:02d}-{day:02d}: not a date") from None
    return when, _offset(f"{name}.zzz", _text(f"{name}.zzz", fields.get("zzz")) or "Z")


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


# --- the answers ---------------------------------------------------------------------------------


def _pdf_response(pdf: IO[bytes]) -> Response:
    size = os.fstat(pdf.fileno()).st_size
    chunks = iterate_in_thread(iter(lambda: pdf.read(PDF_CHUNK), b""))
    return _ClosingStreamingResponse(
        chunks,
        on_close=pdf.close,
        media_type="application/pdf",
        headers={
            "Content-Disposition": 'attachment; filename="AccountTrxList.pdf"',
            "Content-Length": str(size),
        },
    )


class _ClosingStreamingResponse(StreamingResponse):
    """A StreamingResponse that calls `on_close` however sending ends, disconnects included.

    StreamingResponse runs its `background` task only after a complete answer; a report's
    database session or file must be released in every case.
    """

    def __init__(self, content: Any, *, on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()

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

The request's parser and the reports themselves are `printsrv/accounts/reports.py`'s: a CSV
report over a million transactions is never held in memory but streamed from a read session
on a thread of its own (`platform/streams.py`), closed with its session however the response
ends, a client that goes away included.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from printsrv.accounts import reports as accounting_reports
from printsrv.accounts import service as accounting
from printsrv.http import installation_of, read_body
from printsrv.platform.threads import iterate_in_thread
from printsrv.rest.guards import require_admin

MAX_BODY = 64 * 1024
PDF_CHUNK = 64 * 1024


async def account_transactions(request: Request) -> Response:
    """POST /reports/accounttrx: the selected ledger rows as CSV or PDF (admin)."""
    require_admin(request)
    report = accounting_reports.ReportRequest.parse_body(await read_body(request, MAX_BODY))
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

"""What a user may see of their own prints: where each went, how it ended, and why.

The REST contract has no user-facing listing, so this is the service the web app's page
(and any future user API) calls; the reason a print failed lives in the job's ``message``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from printsrv.models import Document, PrintJob

__all__ = [
    "RELEASED_STATES",
    "DocumentView",
    "PrintView",
    "released_print",
    "user_documents",
    "user_prints",
]


@dataclass(frozen=True)
class PrintView:
    """One print of a user's document.

    Attributes:
        document_id: the uploaded document (the `in` entry).
        title: its title.
        printer: the CUPS printer.
        state: queued, submitted, completed, canceled, aborted or failed.
        cost: the price charged; refunded when ``refunded`` is true.
        refunded: whether the charge was reversed.
        reason: why it did not complete ("" otherwise).
        created: when it was asked for (aware UTC).
        finished: when it reached its final state, or None.
        pages: the document's pages.
        pages_color, pages_grayscale: how many have colour / are grey only (None: not known).
    """

    document_id: int
    title: str
    printer: str
    state: str
    cost: Decimal
    refunded: bool
    reason: str
    created: datetime
    finished: datetime | None
    pages: int = 0
    pages_color: int | None = None
    pages_grayscale: int | None = None


def user_prints(session: Session, user_id: int, *, limit: int = 20) -> list[PrintView]:
    """The user's latest prints, newest first."""
    rows = session.execute(
        select(
            PrintJob,
            Document.source_id,
            Document.title,
            Document.pages_color,
            Document.pages_grayscale,
        )
        .join(Document, Document.id == PrintJob.document_id)
        .where(PrintJob.user_id == user_id)
        .order_by(PrintJob.created_at.desc(), PrintJob.id.desc())
        .limit(limit)
    ).all()
    return [
        PrintView(
            document_id=source_id if source_id is not None else job.document_id,
            title=title,
            printer=job.printer_name,
            state=job.state,
            cost=job.cost,
            refunded=job.refund_trx_id is not None,
            reason=job.message if job.state not in ("completed", "submitted", "queued") else "",
            created=job.created_at,
            finished=job.finished_at,
            pages=job.pages,
            pages_color=pages_color,
            pages_grayscale=pages_grayscale,
        )
        for job, source_id, title, pages_color, pages_grayscale in rows
    ]


@dataclass(frozen=True)
class DocumentView:
    """One document the user uploaded (a document-log entry of type `in`).

    ``held`` is true while it waits in the inbox and can be released: stored, younger than
    ``print.inbox.expiry-hours``, and with no print that is on its way or completed (a
    print that failed, was cancelled or aborted leaves it held, so it can be tried again).
    """

    document_id: int
    title: str
    pages: int
    queue: str
    created: datetime
    stored: bool
    held: bool = False


# A print in one of these states means the document went out (or is going out).
RELEASED_STATES = ("queued", "submitted", "completed")


def released_print(session: Session, document_id: int) -> int | None:
    """The id of a print job of ``document_id`` that is queued, out or done; None if none.

    A failed, cancelled or aborted print does not count: the document may be released again.
    """
    return session.scalar(
        select(PrintJob.id)
        .join(Document, Document.id == PrintJob.document_id)
        .where(Document.source_id == document_id, PrintJob.state.in_(RELEASED_STATES))
        .limit(1)
    )


def user_documents(
    session: Session,
    user_id: int,
    *,
    limit: int = 20,
    expiry_hours: int | None = None,
    now: datetime | None = None,
) -> list[DocumentView]:
    """The user's latest uploads, newest first (held ones wait in the `webservice` queue).

    With ``expiry_hours`` and ``now`` given, ``held`` says which ones can be released now.
    """
    rows = list(
        session.scalars(
            select(Document)
            .where(Document.user_id == user_id, Document.doc_type == "in")
            .order_by(Document.created_at.desc(), Document.id.desc())
            .limit(limit)
        )
    )
    printed: set[int] = set()
    if rows and expiry_hours is not None and now is not None:
        printed = set(
            session.scalars(
                select(Document.source_id)
                .join(PrintJob, PrintJob.document_id == Document.id)
                .where(
                    Document.source_id.in_([d.id for d in rows]),
                    PrintJob.state.in_(RELEASED_STATES),
                )
            )
        )
    return [
        DocumentView(
            d.id,
            d.title,
            d.pages,
            d.queue_name,
            d.created_at,
            d.store,
            held=(
                expiry_hours is not None
                and now is not None
                and d.store
                and d.id not in printed
                and now < d.created_at + timedelta(hours=expiry_hours)
            ),
        )
        for d in rows
    ]

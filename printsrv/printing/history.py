"""What a user may see of their own prints: where each went, how it ended, and why.

The web app's page calls ``user_prints`` and ``user_documents``; the document log (REST admin
and user views) shows each print's job as a ``JobSummary``. The reason a print failed lives in
the job's ``message``; what is shown as a print's ``status`` is decided here, once
(``print_status``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from financial.money import ZERO
from printsrv.documents.models import Document
from printsrv.printing.models import PrintJob
from printsrv.printing.ruled import latest_ruled

__all__ = [
    "FAILED_STATES",
    "RELEASED_STATES",
    "DocumentView",
    "JobSummary",
    "PrintView",
    "copies_of",
    "failure_reason",
    "print_status",
    "released_print",
    "user_documents",
    "user_prints",
]


# A print that ended in one of these states did not print; its charge was refunded.
FAILED_STATES: Final = ("canceled", "aborted", "failed")


def print_status(state: str, cups_state: str) -> str:
    """What a print's ``status`` says: CUPS' own job state while CUPS has the job, else
    printsrv's.

    ``queued`` (charged, not yet handed to CUPS), then while CUPS has it ``pending``,
    ``held``, ``processing`` or ``stopped`` (as the tracker last saw it), and finally
    ``completed``, ``canceled``, ``aborted`` (CUPS' final states) or ``failed`` (CUPS refused
    or lost the job, or could not be reached).
    """
    if state == "submitted":
        # Until the tracker's first look, CUPS' state is the one it has on submission.
        return cups_state or "pending"
    return state


def failure_reason(state: str, message: str) -> str:
    """Why a print did not complete; "" while it may still, and once it has."""
    return message if state in FAILED_STATES else ""


def copies_of(options: str) -> int:
    """The number of copies in a job's options (JSON, as validated), 1 when not given."""
    try:
        return max(1, int(json.loads(options or "{}").get("copies", 1)))
    except (ValueError, TypeError, AttributeError):
        return 1  # the options were validated before the job was made; never seen


@dataclass(frozen=True, slots=True)
class JobSummary:
    """A print's job as the document log shows it, read in the log's own query.

    Attributes:
        printer: the CUPS printer.
        state: printsrv's job state (queued, submitted, completed, canceled, aborted, failed).
        cups_state: CUPS' job state as last seen ("" before CUPS had the job).
        cups_job_id: the CUPS job id, once CUPS has the job.
        pages: the document's pages.
        copies: copies asked for.
        sheets: sheets of paper, all copies.
        cost: what was charged.
        refunded: whether the charge was reversed.
        message: the job's latest message (the failure reason once it failed).
        finished: when it reached its final state (aware UTC), or None.
    """

    printer: str
    state: str
    cups_state: str
    cups_job_id: int | None
    pages: int
    copies: int
    sheets: int
    cost: Decimal
    refunded: bool
    message: str
    finished: datetime | None

    @property
    def status(self) -> str:
        """The print's state as shown (``print_status``)."""
        return print_status(self.state, self.cups_state)

    @property
    def refund(self) -> Decimal:
        """The amount given back: the whole charge when it was refunded, else zero."""
        return self.cost if self.refunded else ZERO

    @property
    def reason(self) -> str:
        """Why it did not complete ("" unless it failed, was cancelled or aborted)."""
        return failure_reason(self.state, self.message)


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
            reason=failure_reason(job.state, job.message),
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
    ``release.hold-hours``, with no print that is on its way or completed (a
    print that failed, was cancelled or aborted leaves it held, so it can be tried again),
    and not waiting for an approval. ``approval`` is what a print rule last decided about
    it ("waiting for approval", "refused", "approved", "denied"; "" when no rule did), and
    ``approval_note`` the rule's message or the approver's comment.
    """

    document_id: int
    title: str
    pages: int
    queue: str
    created: datetime
    stored: bool
    held: bool = False
    approval: str = ""
    approval_note: str = ""


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
    ruled = latest_ruled(session, [d.id for d in rows])
    views = []
    for d in rows:
        decided = ruled.get(d.id)
        note = ""
        if decided is not None:
            note = decided.comment if decided.state in ("approved", "denied") else decided.message
        views.append(
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
                    and (decided is None or decided.state != "waiting")
                    and now < d.created_at + timedelta(hours=expiry_hours)
                ),
                approval=decided.status if decided is not None else "",
                approval_note=note,
            )
        )
    return views

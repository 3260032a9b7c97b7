"""Approving or denying a print a rule held: the one path every door (CLI, REST, JSON-RPC) takes.

An approval charges and prints exactly what was held (its printer and its options, the
rules' changes included), priced again now, so a balance that changed since the hold is
checked again: a balance that no longer covers it refuses the approval (402) and the print
keeps waiting. Leaving ``waiting`` is one conditional UPDATE in the transaction that writes
the print entry, the job and its charge, so two approvals racing each other (two admins,
two machines) print and charge once; the loser gets Conflict. A denial records who denied
it and why; nothing is charged.

Both services are blocking (database and CUPS): adapters on the event loop call them
through ``in_thread``. ``list_waiting`` is the admin's read of what waits for a decision,
in the caller's session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from financial.money import ZERO
from printsrv.documents.convert import PageColours
from printsrv.documents.log import (
    EXT_ID_PREFIX,
    document_id_of,
    find_by_ext_id,
    get_document,
    log_print,
)
from printsrv.documents.models import Document
from printsrv.errors import Conflict, InvalidInput
from printsrv.operations.installation import Installation
from printsrv.people.models import User
from printsrv.platform.models import utcnow
from printsrv.printing.context import PrintContext
from printsrv.printing.intake import plan_print, print_target
from printsrv.printing.jobs import create_job, submit_job_sync
from printsrv.printing.models import RuledPrint
from printsrv.printing.ruled import layers_of

__all__ = [
    "MAX_WAITING_PAGE",
    "Decision",
    "WaitingPrint",
    "approve_document",
    "deny_document",
    "list_waiting",
]

MAX_COMMENT = 500
# A page of the waiting list; the offset stays within a database integer.
MAX_WAITING_PAGE: Final = 1000
MAX_WAITING_OFFSET: Final = 2**31 - 1


@dataclass(frozen=True)
class Decision:
    """What an approval or denial did.

    Attributes:
        document_id: the held document.
        state: ``approved`` or ``denied``.
        printer: where it was (or would have been) printed.
        cost: what was charged (zero for a denial, or a failed print, which is refunded).
        job_state: the print job's state after submission (``submitted`` or ``failed``),
            "" for a denial.
        message: why the print failed, else "".
    """

    document_id: int
    state: str
    printer: str
    cost: Decimal
    job_state: str = ""
    message: str = ""


@dataclass(frozen=True)
class WaitingPrint:
    """A print a rule holds until an administrator approves or denies it.

    Attributes:
        ref: the document reference approve and deny take (the uploaded document's id).
        ext_id: the caller's own id of the upload, or None.
        user: the user name of who printed it.
        title: the document's title.
        pages: its pages.
        printer: the CUPS printer it is to print on.
        queue: the queue it came by.
        cost: the price quoted when it was held (an approval charges the price then).
        rules: the names of the rules that held it.
        message: what the rules told the user.
        waiting_since: when it was held (aware, UTC).
    """

    ref: str
    ext_id: str | None
    user: str
    title: str
    pages: int
    printer: str
    queue: str
    cost: Decimal
    rules: tuple[str, ...]
    message: str
    waiting_since: datetime


def list_waiting(session: Session, *, limit: int = 100, offset: int = 0) -> list[WaitingPrint]:
    """Every print waiting for approval, the longest waiting first (one query).

    Raises InvalidInput when ``limit`` is not 1 to MAX_WAITING_PAGE or ``offset`` is negative
    or past a database integer.
    """
    if not 1 <= limit <= MAX_WAITING_PAGE:
        raise InvalidInput(f"limit {limit} is not between 1 and {MAX_WAITING_PAGE}", reason="limit")
    if not 0 <= offset <= MAX_WAITING_OFFSET:
        raise InvalidInput(
            f"offset {offset} is not between 0 and {MAX_WAITING_OFFSET}", reason="offset"
        )
    rows = session.execute(
        select(
            RuledPrint.document_id,
            Document.ext_id,
            User.user_name,
            Document.title,
            Document.pages,
            RuledPrint.printer_name,
            Document.queue_name,
            RuledPrint.cost,
            RuledPrint.rules,
            RuledPrint.message,
            RuledPrint.created_at,
        )
        .join(Document, Document.id == RuledPrint.document_id)
        .join(User, User.id == RuledPrint.user_id)
        .where(RuledPrint.state == "waiting")
        # The id breaks ties between holds in the same instant, so pages do not overlap.
        .order_by(RuledPrint.created_at, RuledPrint.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return [
        WaitingPrint(
            ref=str(r.document_id),
            ext_id=r.ext_id,
            user=r.user_name,
            title=r.title,
            pages=r.pages,
            printer=r.printer_name,
            queue=r.queue_name,
            cost=r.cost,
            rules=tuple(n for n in r.rules.split(",") if n),
            message=r.message,
            waiting_since=r.created_at,
        )
        for r in rows
    ]


def _comment(comment: str | None) -> str:
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT:
        raise InvalidInput(f"Comment is longer than {MAX_COMMENT} characters", reason="comment")
    return text


def _document(session: Session, ref: str) -> Document:
    """The uploaded document ``ref`` names: its id or ``ext_id=<ext_id>``."""
    text = (ref or "").strip()
    if text.startswith(EXT_ID_PREFIX):
        return find_by_ext_id(session, text[len(EXT_ID_PREFIX) :])
    return get_document(session, document_id_of(text))


def _waiting(session: Session, ref: str) -> RuledPrint:
    """The document's print that waits for approval; Conflict when none waits."""
    document = _document(session, ref)
    row = session.scalar(
        select(RuledPrint).where(
            RuledPrint.document_id == document.id, RuledPrint.state == "waiting"
        )
    )
    if row is None:
        raise Conflict(f"Document {document.id} is not waiting for approval", reason="ref")
    return row


def _leave_waiting(session: Session, row_id: int, **values: object) -> None:
    """Move a waiting print on, or raise Conflict when another request got there first."""
    moved = session.execute(
        update(RuledPrint)
        .where(RuledPrint.id == row_id, RuledPrint.state == "waiting")
        .values(decided_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not moved:
        raise Conflict("The document is no longer waiting for approval: decided meanwhile")


def approve_document(
    installation: Installation, ref: str, *, admin: str, comment: str | None = None
) -> Decision:
    """Approve the print ``ref`` (document id or ``ext_id=...``) waits with: charge it at
    today's price and send it to CUPS (to a remote printer: queue it for its print agent).

    Raises NotFound (no such document), Conflict (not waiting, decided meanwhile, printer
    gone, PDF gone), PrintingDenied (the user may no longer print there), CreditExceeded
    (402: the balance no longer covers it; it keeps waiting), InvalidInput (comment).
    A CUPS failure is not raised: the job fails, is refunded, and ``job_state`` says so.
    """
    note = _comment(comment)
    context = PrintContext.of(installation)
    with installation.db.read() as session:
        held = _waiting(session, ref)
        user = session.get_one(User, held.user_id)
        source = session.get_one(Document, held.document_id)
        target = print_target(session, held.printer_name, user)
        plan = plan_print(
            target, layers_of(held), source.pages, PageColours.from_text(source.page_colors)
        )
        held_id, document_id, title, digest = held.id, source.id, source.title, source.pdf_sha256
    if not context.store.has(digest):
        raise Conflict(f"The PDF of document {document_id} is missing from the store")
    with installation.db.transaction() as session:
        # The document's row lock orders this approval against a racing one (and against a
        # release of the same document); the conditional UPDATE lets only one through.
        session.execute(select(Document.id).where(Document.id == document_id).with_for_update())
        source = session.get_one(Document, document_id)
        print_document = log_print(session, source=source, client_address="")
        _leave_waiting(
            session,
            held_id,
            state="approved",
            decided_by=admin,
            comment=note,
            print_document_id=print_document.id,
        )
        job = create_job(
            session,
            user=user,
            print_document=print_document,
            printer=plan.printer.name,
            options=plan.options,
            cost=plan.cost,
            context=context,
            agent_id=plan.agent_id,
        )
        job_id = job.id
    if plan.agent_id is not None:
        # A remote printer's job waits for its print agent, as an accepted upload's does.
        return Decision(document_id, "approved", plan.printer.name, plan.cost, "queued", "")
    outcome = submit_job_sync(
        context,
        job_id=job_id,
        printer=plan.printer.name,
        pdf_path=str(context.store.path_for(digest)),
        title=title,
        options=plan.options,
        user_name=user.user_name,
    )
    failed = outcome.state == "failed"
    return Decision(
        document_id,
        "approved",
        plan.printer.name,
        ZERO if failed else plan.cost,
        outcome.state,
        outcome.message,
    )


def deny_document(
    installation: Installation, ref: str, *, admin: str, comment: str | None = None
) -> Decision:
    """Deny the print ``ref`` waits with; nothing is charged and the reason is kept.

    Raises NotFound (no such document), Conflict (not waiting), InvalidInput (comment).
    """
    note = _comment(comment)
    with installation.db.transaction() as session:
        held = _waiting(session, ref)
        _leave_waiting(session, held.id, state="denied", decided_by=admin, comment=note)
        return Decision(held.document_id, "denied", held.printer_name, ZERO)

"""A person's held documents as a station shows them, and releasing them to its printer.

Releasing goes through ``printing.intake.release`` with ``once``: the same checks, rules,
price and charge as the user's page and the REST release, and the document's row lock
inside the charging transaction, so two stations releasing one document at the same
moment print and charge it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, aliased

from financial.money import ZERO
from printsrv.documents.models import Document
from printsrv.errors import DatabaseUnavailable, PrintsrvError
from printsrv.people.models import User
from printsrv.printing import intake
from printsrv.printing.context import PrintContext
from printsrv.printing.history import RELEASED_STATES
from printsrv.printing.models import PrintJob, RuledPrint

__all__ = [
    "HeldDocument",
    "Released",
    "held_documents",
    "release_documents",
    "released_sources",
    "waiting_for_approval",
]

MAX_LISTED = 50  # a station lists the newest; the rest wait for the next release


@dataclass(frozen=True)
class HeldDocument:
    """A document waiting in the inbox, priced for one printer.

    ``price`` is None and ``problem`` says why when this printer cannot take it as asked
    (an option it lacks, say); releasing it there would be refused the same way.
    """

    document_id: int
    title: str
    pages: int
    created: datetime
    price: Decimal | None
    problem: str = ""


@dataclass(frozen=True)
class Released:
    """What became of one document a person asked to release.

    ``status`` is ``printing`` (CUPS has it, ``cost`` charged), ``failed`` (CUPS refused it,
    refunded), ``waiting`` (a print rule holds it for an approver: ``message`` is the rule's,
    nothing charged yet) or ``refused`` (not released: ``message`` says why, nothing charged).
    """

    document_id: int
    title: str
    status: str
    cost: Decimal
    message: str = ""


def released_sources() -> Select[tuple[int | None]]:
    """The ids of uploaded documents that have a print on its way or done."""
    print_entry = aliased(Document)
    return (
        select(print_entry.source_id)
        .join(PrintJob, PrintJob.document_id == print_entry.id)
        # NOT IN over a NULL would match nothing at all.
        .where(PrintJob.state.in_(RELEASED_STATES), print_entry.source_id.is_not(None))
    )


def waiting_for_approval() -> Select[tuple[int]]:
    """The ids of uploaded documents a print rule holds for an approver's decision."""
    return select(RuledPrint.document_id).where(RuledPrint.state == "waiting")


def _held(session: Session, user_id: int, hold_hours: int, now: datetime) -> list[Document]:
    # Held: stored, younger than release.hold-hours, no print on its way or done, and not
    # waiting for an approver (releasing that is refused; the user's page does not offer it).
    return list(
        session.scalars(
            select(Document)
            .where(
                Document.user_id == user_id,
                Document.doc_type == "in",
                Document.store.is_(True),
                Document.created_at > now - timedelta(hours=hold_hours),
                Document.id.not_in(released_sources()),
                Document.id.not_in(waiting_for_approval()),
            )
            .order_by(Document.created_at.desc(), Document.id.desc())
            .limit(MAX_LISTED)
        )
    )


def held_documents(
    session: Session, user: User, *, printer_name: str, hold_hours: int, now: datetime
) -> list[HeldDocument]:
    """The user's held documents, newest first (at most MAX_LISTED), each priced for
    ``printer_name``."""
    rows = _held(session, user.id, hold_hours, now)
    listed: list[HeldDocument] = []
    for document in rows:
        try:
            price: Decimal | None = intake.quote(
                session, user=user, document=document, printer_name=printer_name
            )
            problem = ""
        except PrintsrvError as refusal:
            price, problem = None, refusal.message
        listed.append(
            HeldDocument(
                document.id, document.title, document.pages, document.created_at, price, problem
            )
        )
    return listed


async def release_documents(
    context: PrintContext,
    *,
    user: User,
    printer_name: str,
    document_ids: list[int],
    station: str,
) -> list[Released]:
    """Release each document to ``printer_name``, one after the other, and say what became
    of each: a refusal of one (already released by another station, too little credit)
    does not stop the rest. The database being away does."""
    done: list[Released] = []
    for document_id in dict.fromkeys(document_ids):  # once each, in the order asked
        try:
            accepted = await intake.release(
                context,
                user=user,
                document_id=document_id,
                printer_name=printer_name,
                ipp_options=None,
                client_host=station,
                once=True,
            )
        except DatabaseUnavailable:
            raise
        except PrintsrvError as refusal:
            done.append(Released(document_id, "", "refused", ZERO, refusal.message))
            continue
        done.append(
            Released(document_id, accepted.title, accepted.status, accepted.cost, accepted.message)
        )
    return done

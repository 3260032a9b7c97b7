"""The admin console's Printing section: printers and queues, the document log, a
document's PDF and a picture of its first page.

Each public function is one unit of work (its own transaction) over the services the CLI
and JSON-RPC use (`printing.printers`, `printing.queues`, `printing.access`,
`documents.log`), raising `printsrv.errors`; the console's handlers
(printsrv/web/admin/printing.py) parse, call one of these, and render.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Final

from printsrv import errors
from printsrv.documents import convert_to
from printsrv.documents.log import DocumentFilter, LogEntry, get_document, list_documents
from printsrv.documents.store import PdfStore
from printsrv.operations.installation import Installation
from printsrv.people import users as user_service
from printsrv.platform.threads import in_thread
from printsrv.printing import access, printers, queues
from printsrv.printing.access import GroupAccess
from printsrv.printing.costs import CostModel
from printsrv.printing.models import PrintQueue

__all__ = [
    "LOG_PAGE",
    "PREVIEW_WIDTH",
    "DocumentLog",
    "LogQuery",
    "PrinterView",
    "QueueView",
    "change_access",
    "document_log",
    "first_page_png",
    "list_printer_views",
    "list_queue_views",
    "route_queue",
    "set_prices",
    "set_queue_enabled",
    "stored_pdf",
]

log = logging.getLogger(__name__)

LOG_PAGE: Final = 25
PREVIEW_WIDTH: Final = 480
DOC_TYPES: Final = ("all", "in", "out", "pdf", "print", "ticket")


@dataclass(frozen=True)
class PrinterView:
    """A printer as the console lists it: state, prices (as the CLI describes them), and
    which groups may print on it (none listed: everyone may)."""

    name: str
    state: str
    state_message: str
    accepting: bool
    location: str
    remote: bool
    prices: list[str]
    access: list[GroupAccess]


def list_printer_views(installation: Installation) -> list[PrinterView]:
    """Every printer known (present in CUPS or reported by an agent), sorted by name."""
    with installation.db.read() as session:
        return [
            PrinterView(
                row.name,
                row.state,
                row.state_message,
                row.accepting,
                row.location,
                row.agent_id is not None,
                printers.describe_cost(printers.cost_from_json(row.cost_model)),
                access.list_access(session, row.name),
            )
            for row in printers.list_printers(session)
        ]


@dataclass(frozen=True)
class QueueView:
    """A queue: whether it takes documents, from which addresses, and where it sends them."""

    name: str
    enabled: bool
    reserved: bool
    ip_allowed: str
    printer_name: str | None
    routing: dict[str, str]


def _queue_view(queue: PrintQueue) -> QueueView:
    return QueueView(
        queue.name,
        queue.enabled,
        queue.reserved,
        queue.ip_allowed,
        queue.printer_name,
        queues.routing_options(queue),
    )


def list_queue_views(installation: Installation) -> list[QueueView]:
    """Every queue, sorted by name."""
    with installation.db.read() as session:
        return [_queue_view(queue) for queue in queues.list_queues(session)]


def change_access(installation: Installation, printer: str, group: str, scope: str) -> str:
    """Put `group` on `printer`'s ALLOW or DENY list, or with scope REMOVE take it off
    (as `printsrv printer access`); what was done, in words. InvalidInput (scope),
    NotFound (printer, group, or a group that is on no list to remove it from)."""
    with installation.db.transaction() as session:
        if scope.strip().upper() == "REMOVE":
            access.revoke(session, printer, group)
            return f"group '{group.strip().lower()}' taken off the access lists"
        previous = access.grant(session, printer, group, scope)
        return access.describe_grant(group.strip().lower(), access.parse_scope(scope), previous)


def set_queue_enabled(installation: Installation, name: str, enabled: bool) -> str:
    """Enable or disable a queue (a disabled one refuses documents); its name."""
    with installation.db.transaction() as session:
        return queues.set_enabled(session, name, enabled).name


def set_prices(
    installation: Installation,
    printer: str,
    per_side: Decimal | None,
    *,
    actor: str,
    per_side_color: Decimal | None = None,
    per_side_duplex: Decimal | None = None,
    per_side_duplex_color: Decimal | None = None,
) -> list[str]:
    """Give `printer` simple prices, as `printsrv printer cost NAME --per-side ...` does
    (`printing.printers.set_cost`; a missing variant falls back as `SidePrices.simple`
    says), or with `per_side` None make it free. The prices in words, as `printer show` gives them.
    InvalidInput (a negative or too large price), NotFound (printer)."""
    model = (
        None
        if per_side is None
        else CostModel.simple(
            per_side,
            per_side_color=per_side_color,
            per_side_duplex=per_side_duplex,
            per_side_duplex_color=per_side_duplex_color,
        )
    )
    with installation.db.transaction() as session:
        name = printers.set_cost(session, printer, model).name
    log.info("printer %s prices set to %s by %s", name, printers.describe_cost(model), actor)
    return printers.describe_cost(model)


def route_queue(installation: Installation, queue: str, printer: str | None, *, actor: str) -> str:
    """Send `queue`'s documents to `printer` (None: hold them in the user's inbox), as
    `printsrv queue set NAME --printer P | --no-printer` does (`printing.queues.set_queue`;
    the queue's routing options are checked against the new printer). The queue's name.
    NotFound (queue, printer), Conflict (the reserved `webservice` queue cannot route),
    InvalidInput (options the printer does not support)."""
    with installation.db.transaction() as session:
        name = queues.set_queue(session, queue, printer=printer).name
    log.info("queue %s routed to %s by %s", name, printer or "(held)", actor)
    return name


# --- the document log -------------------------------------------------------------------------


@dataclass(frozen=True)
class LogQuery:
    """The log's filters as typed in the form (text; `document_log` checks them)."""

    doc_type: str = "all"
    user: str = ""
    date_from: str = ""
    date_to: str = ""
    page: int = 0


@dataclass(frozen=True)
class DocumentLog:
    """A page of the document log, newest first."""

    query: LogQuery
    entries: list[LogEntry]
    has_next: bool


def _day(text: str, field: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise errors.InvalidInput(
            f"{text.strip()[:20]!r} is not a date (YYYY-MM-DD).", reason=field
        ) from None


def document_log(installation: Installation, query: LogQuery) -> DocumentLog:
    """A page of the log as `query` filters it (type; a user's documents; UTC days from and
    to, both included). InvalidInput naming the field for a bad filter, NotFound for an
    unknown user."""
    if query.doc_type not in DOC_TYPES:
        raise errors.InvalidInput(
            f"{query.doc_type[:20]!r} is not one of {', '.join(DOC_TYPES)}.", reason="type"
        )
    first, last = _day(query.date_from, "from"), _day(query.date_to, "to")
    if first and last and first > last:
        raise errors.InvalidInput("The first day is after the last.", reason="from")
    with installation.db.read() as session:
        user_id = None
        if query.user.strip():
            found = user_service.find_user(session, query.user, include_deleted=True)
            if found is None:
                raise errors.InvalidInput(
                    f"There is no user {query.user.strip()[:100]!r}.", reason="user"
                )
            user_id = found.id
        bounds = {
            "doc_type": query.doc_type,
            "created_gte": datetime.combine(first, time.min, UTC) if first else None,
            "created_lte": (
                datetime.combine(last + timedelta(days=1), time.min, UTC)
                - timedelta(microseconds=1)
                if last
                else None
            ),
            "user_id": user_id,
        }
        entries = list_documents(
            session,
            DocumentFilter(limit=LOG_PAGE, page=query.page, **bounds),  # type: ignore[arg-type]
        )
        # Is there a next page? The one row after this page, if any (limit 1 at its offset).
        after = list_documents(
            session,
            DocumentFilter(limit=1, page=(query.page + 1) * LOG_PAGE, **bounds),  # type: ignore[arg-type]
        )
    return DocumentLog(query, entries, bool(after))


# --- a document's PDF and preview -----------------------------------------------------------


def stored_pdf(installation: Installation, document_id: int) -> tuple[Path, str]:
    """The stored PDF of a document and a file name to give it; NotFound when the document
    does not exist or its PDF is no longer kept."""
    with installation.db.read() as session:
        document = get_document(session, document_id)
    path = PdfStore(installation.env.home).path_for(document.pdf_sha256)
    if not document.store or not path.is_file():
        raise errors.NotFound(f"The PDF of document {document.id} is no longer stored")
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in document.title.rsplit(".", 1)[0])
    return path, f"{stem.strip('_')[:100] or document.id}.pdf"


async def first_page_png(installation: Installation, document_id: int) -> bytes:
    """A PNG of the document's first page, PREVIEW_WIDTH pixels wide, made by convert-to's
    own converter (its limits, its cap on parallel conversions)."""
    path, name = await in_thread(stored_pdf, installation, document_id)
    settings = convert_to.ConvertSettings.of(installation.config.snapshot())
    store = PdfStore(installation.env.home)
    work_dir = await in_thread(store.work_dir)
    try:
        target = convert_to.Target("png", 1, PREVIEW_WIDTH)
        result = await convert_to.convert_path(path, work_dir, target, name=name, settings=settings)
    finally:
        await in_thread(shutil.rmtree, work_dir, True)
    return result.content

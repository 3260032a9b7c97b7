"""The document log, and the retention of the PDFs it names (the store: `documents.store`).

Every document that comes in is one `Document` row of type `in`; every print of it adds a
row of type `print` pointing back at it. Its PDF lives in the content-addressed store
(`documents.store`), named by its SHA-256; retention decides when a stored PDF may go.

Services take a session and never commit; `run_retention` and `sweep_orphans` are batch jobs
and open their own transactions.
"""

from __future__ import annotations

import functools
import logging
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Row, Select, bindparam, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from printsrv.documents.convert.colour import PageColours
from printsrv.documents.models import DOCUMENT_TYPES, Document
from printsrv.documents.store import PdfStore, StoredPdf
from printsrv.errors import Conflict, InvalidInput, NotFound
from printsrv.people.models import User
from printsrv.platform.database import Database
from printsrv.platform.models import UTCDateTime, utcnow
from printsrv.printing.history import JobSummary, copies_of
from printsrv.printing.models import PrintJob

log = logging.getLogger(__name__)

# How the REST paths name a document by its external id: /documents/ext_id=<ext_id>.
EXT_ID_PREFIX: Final = "ext_id="

__all__ = [
    "EXT_ID_PREFIX",
    "DocumentFilter",
    "LogEntry",
    "check_ext_id",
    "document_id_of",
    "find_by_ext_id",
    "find_entry_by_ext_id",
    "get_document",
    "get_entry",
    "list_documents",
    "log_print",
    "log_upload",
    "read_document",
    "read_entry",
    "read_page",
    "releasable_document",
    "run_retention",
    "sweep_orphans",
]

MAX_EXT_ID_LENGTH: Final = 255
# A file in the store that no kept document names is left alone this long: an upload may
# have put it there a moment before committing its log row.
ORPHAN_GRACE: Final = timedelta(hours=1)


def check_ext_id(value: str | None) -> str | None:
    """The caller's ``ext_id`` as stored: stripped, None when empty.

    Raises InvalidInput for one that is too long or holds control characters or '/'.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if len(text) > MAX_EXT_ID_LENGTH:
        raise InvalidInput(f"ext_id is longer than {MAX_EXT_ID_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidInput("ext_id contains control characters")
    if "/" in text:
        # GET /documents/ext_id=<ext_id> could never find it: '/' ends a path segment.
        raise InvalidInput("ext_id must not contain '/'")
    return text


def log_upload(
    session: Session,
    *,
    user: User,
    title: str,
    pdf: StoredPdf,
    pages: int,
    source_type: str,
    source_bytes: int,
    source_sha256: str,
    client_address: str,
    queue_name: str,
    ipp_options: str,
    ext_id: str | None,
    colours: PageColours | None = None,
) -> Document:
    """Write the `in` entry of an uploaded document; Conflict when ``ext_id`` is taken.

    ``colours`` is the PDF's colour detection (None: not known). The unique constraint
    decides, so two uploads with one ``ext_id`` racing each other get one document and one
    Conflict (callers check up front too, to answer before converting).
    """
    document = Document(
        doc_type="in",
        user_id=user.id,
        ext_id=ext_id,
        title=title,
        created_at=utcnow(),
        store=True,
        pdf_sha256=pdf.sha256,
        pdf_bytes=pdf.size,
        pages=pages,
        source_type=source_type,
        source_bytes=source_bytes,
        source_sha256=source_sha256,
        client_address=client_address,
        queue_name=queue_name,
        ipp_options=ipp_options,
        page_colors=None if colours is None else colours.to_text(),
        pages_color=None if colours is None else colours.pages_color,
        pages_grayscale=None if colours is None else colours.pages_grayscale,
    )
    try:
        with session.begin_nested():  # a savepoint: the race's loser keeps its transaction
            session.add(document)
    except IntegrityError as exc:
        taken = session.scalar(
            select(Document.id).where(Document.user_id == user.id, Document.ext_id == ext_id)
        )
        raise Conflict(f"ext_id {ext_id!r} is already used by document {taken}") from exc
    return document


def log_print(session: Session, *, source: Document, client_address: str) -> Document:
    """Write the `print` entry of printing ``source`` (an `in` entry)."""
    document = Document(
        doc_type="print",
        source_id=source.id,
        user_id=source.user_id,
        title=source.title,
        created_at=utcnow(),
        store=source.store,
        pdf_sha256=source.pdf_sha256,
        pdf_bytes=source.pdf_bytes,
        pages=source.pages,
        source_type=source.source_type,
        source_bytes=source.source_bytes,
        source_sha256=source.source_sha256,
        client_address=client_address,
        queue_name=source.queue_name,
        ipp_options=source.ipp_options,
        page_colors=source.page_colors,
        pages_color=source.pages_color,
        pages_grayscale=source.pages_grayscale,
    )
    session.add(document)
    session.flush()
    return document


def get_document(session: Session, document_id: int) -> Document:
    """The log entry with this id; NotFound otherwise."""
    document = session.get(Document, document_id)
    if document is None:
        raise NotFound(f"Document {document_id} does not exist")
    return document


def find_by_ext_id(session: Session, ext_id: str) -> Document:
    """The upload with this ``ext_id`` (the newest, if several users chose the same one)."""
    document = session.scalars(
        select(Document)
        .where(Document.ext_id == ext_id)
        .order_by(Document.created_at.desc(), Document.id.desc())
        .limit(1)
    ).first()
    if document is None:
        raise NotFound(f"No document has ext_id {ext_id!r}")
    return document


# `out` is SavaPage's name for everything that left the system: PDF downloads and prints.
_TYPE_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "all": DOCUMENT_TYPES,
    "in": ("in",),
    "out": ("pdf", "print"),
    "pdf": ("pdf",),
    "print": ("print",),
    "ticket": ("ticket",),
}
MAX_PAGE_SIZE: Final = 1000
MAX_PAGE: Final = 2**31 - 1


@dataclass(frozen=True)
class DocumentFilter:
    """A selection of the log, as ``GET /documents`` (or a user's ``GET /user/documents``)
    asks for it; also the key of a cached page.

    Attributes:
        doc_type: all, in, out, pdf, print or ticket.
        newest_first: sort by creation time descending.
        limit: entries per page (1-1000).
        page: the page, counted from 0 (at most MAX_PAGE).
        created_gte, created_lte: bounds on the creation time (aware), inclusive.
        user_id: only this user's entries (their uploads and the prints of them); None: all.
    """

    doc_type: str = "all"
    newest_first: bool = True
    limit: int = 5
    page: int = 0
    created_gte: datetime | None = None
    created_lte: datetime | None = None
    user_id: int | None = None

    def __post_init__(self) -> None:
        if self.doc_type not in _TYPE_GROUPS:
            raise InvalidInput(f"type {self.doc_type!r} is not one of {', '.join(_TYPE_GROUPS)}")
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise InvalidInput(f"limit {self.limit} is not between 1 and {MAX_PAGE_SIZE}")
        if not 0 <= self.page <= MAX_PAGE:
            # Past it, the offset (page x limit) overflows the database's integers.
            raise InvalidInput(f"page {self.page} is not between 0 and {MAX_PAGE}")
        for bound in (self.created_gte, self.created_lte):
            if bound is not None and bound.tzinfo is None:
                raise ValueError("created bounds must be timezone-aware")


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry of the log as the REST views show it.

    Attributes:
        id, ext_id, type, title, created_at, store: the contract's fields (``ext_id`` is the
            document's own, or for a print the one of the upload it printed, else "").
        job: for a print, its job; for an upload that was printed, the job of its latest
            print; None otherwise (held, never printed, a PDF download, a ticket).
        pages_color, pages_grayscale: pages with colour and grey-only pages, by colour
            detection (None: not known).
    """

    id: int
    ext_id: str
    type: str
    title: str
    created_at: datetime
    store: bool
    job: JobSummary | None = None
    pages_color: int | None = None
    pages_grayscale: int | None = None


_EntryRow = Row[tuple[Any, ...]]


def _entry(row: _EntryRow) -> LogEntry:
    """A row of `_entries_query` as a `LogEntry`."""
    job = None
    if row.job_state is not None:  # the outer join found a job
        job = JobSummary(
            printer=row.job_printer,
            state=row.job_state,
            cups_state=row.job_cups_state,
            cups_job_id=row.job_cups_job_id,
            pages=row.job_pages,
            copies=copies_of(row.job_options),
            sheets=row.job_sheets,
            cost=row.job_cost,
            refunded=row.job_refund_trx_id is not None,
            message=row.job_message,
            finished=row.job_finished_at,
        )
    return LogEntry(
        row.id, row.ext_id, row.type, row.title, row.created_at, row.store, job,
        row.pages_color, row.pages_grayscale,
    )  # fmt: skip


def list_documents(session: Session, selection: DocumentFilter) -> list[LogEntry]:
    """One page of the log, each entry with its print job where it has one, in one query."""
    query = _page_query(
        selection.newest_first,
        selection.created_gte is not None,
        selection.created_lte is not None,
        selection.user_id is not None,
    )
    params: dict[str, object] = {
        "types": _TYPE_GROUPS[selection.doc_type],
        "limit": selection.limit,
        "offset": selection.page * selection.limit,
    }
    if selection.created_gte is not None:
        params["gte"] = selection.created_gte
    if selection.created_lte is not None:
        params["lte"] = selection.created_lte
    if selection.user_id is not None:
        params["user_id"] = selection.user_id
    return [_entry(row) for row in session.execute(query, params)]


def get_entry(session: Session, document_id: int) -> LogEntry:
    """The log entry with this id, with its print job (as `list_documents`); NotFound otherwise."""
    row = session.execute(_one_query("id"), {"id": document_id}).first()
    if row is None:
        raise NotFound(f"Document {document_id} does not exist")
    return _entry(row)


def find_entry_by_ext_id(session: Session, ext_id: str) -> LogEntry:
    """The upload with this ``ext_id`` as a log entry (the newest, as `find_by_ext_id`)."""
    row = session.execute(_one_query("ext_id"), {"ext_id": ext_id}).first()
    if row is None:
        raise NotFound(f"No document has ext_id {ext_id!r}")
    return _entry(row)


def _ref_of(ref: str) -> tuple[str, int | str]:
    """A document reference as the REST paths give it: its id, or `ext_id=<ext_id>`."""
    if ref.startswith(EXT_ID_PREFIX):
        ext_id = ref[len(EXT_ID_PREFIX) :]
        if "\x00" in ext_id:  # no upload's (ext_id refuses control characters); PostgreSQL
            raise NotFound(f"Document {ref[:40]!r} does not exist")  # refuses NUL: a 500 once
        return "ext_id", ext_id
    return "id", document_id_of(ref)


def document_id_of(text: str) -> int:
    """A document id from outside; NotFound (not 400) for anything that cannot be one, as an
    unknown id is."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # isdigit() takes "²"
        raise NotFound(f"Document {text[:40]!r} does not exist")
    return int(text)


async def read_document(db: Database, ref: str) -> Document:
    """The document `ref` names (its id, or `ext_id=<ext_id>`), read in its own transaction."""

    def read() -> Document:
        by, key = _ref_of(ref)
        with db.read() as session:
            if by == "ext_id":
                return find_by_ext_id(session, str(key))
            return get_document(session, int(key))

    return await db.run(read)


async def read_entry(db: Database, ref: str) -> LogEntry:
    """The log entry `ref` names (its id, or `ext_id=<ext_id>`), with its print job."""

    def read() -> LogEntry:
        by, key = _ref_of(ref)
        with db.read() as session:
            if by == "ext_id":
                return find_entry_by_ext_id(session, str(key))
            return get_entry(session, int(key))

    return await db.run(read)


async def read_page(db: Database, selection: DocumentFilter) -> list[LogEntry]:
    """One page of the log as `selection` asks, read in its own transaction."""

    def read() -> list[LogEntry]:
        with db.read() as session:
            return list_documents(session, selection)

    return await db.run(read)


def _entries_query(
    where: tuple[Any, ...], newest_first: bool, *, paged: bool
) -> Select[tuple[Any, ...]]:
    """Entries of the log that match ``where``, in creation order, each with its print job.

    One statement in three steps, so that a page costs what its own rows cost, however deep
    it is and however many of its entries show a job: the page's ids are chosen first (the
    created_at index, nothing else read for the rows an offset skips); then, for those rows
    only, the ``ext_id`` to show and the print whose job to show; then the jobs, joined on
    print_job.document_id (unique).
    """
    if newest_first:
        order = (Document.created_at.desc(), Document.id.desc())
    else:
        order = (Document.created_at.asc(), Document.id.asc())
    chosen = select(Document.id.label("id")).where(*where).order_by(*order)
    if paged:
        chosen = chosen.limit(bindparam("limit")).offset(bindparam("offset"))
    else:
        chosen = chosen.limit(1)
    ids = chosen.subquery("chosen")

    source = aliased(Document)
    # A print shows the ext_id of the upload it printed when it has none of its own; a
    # scalar subquery on the primary key fetches it without joining or loading objects.
    source_ext_id = select(source.ext_id).where(source.id == Document.source_id).scalar_subquery()
    # The print whose job an entry shows: a print its own; an upload its newest print (print
    # entries and their jobs are written together, in one transaction; source_id is indexed).
    printed = aliased(Document)
    newest_print = (
        select(func.max(printed.id)).where(printed.source_id == Document.id).scalar_subquery()
    )
    shown_print = case(
        (Document.doc_type == "print", Document.id),
        (Document.doc_type == "in", newest_print),
        else_=None,
    )
    page = (
        select(
            Document.id,
            func.coalesce(Document.ext_id, source_ext_id, "").label("ext_id"),
            Document.doc_type.label("type"),
            Document.title,
            Document.created_at,
            Document.store,
            Document.pages_color,
            Document.pages_grayscale,
            shown_print.label("shown_print"),
        )
        .select_from(ids)
        .join(Document, Document.id == ids.c.id)
        .subquery("page")
    )
    if newest_first:
        outer_order = (page.c.created_at.desc(), page.c.id.desc())
    else:
        outer_order = (page.c.created_at.asc(), page.c.id.asc())
    return (
        select(
            page.c.id,
            page.c.ext_id,
            page.c.type,
            page.c.title,
            page.c.created_at,
            page.c.store,
            page.c.pages_color,
            page.c.pages_grayscale,
            PrintJob.printer_name.label("job_printer"),
            PrintJob.state.label("job_state"),
            PrintJob.cups_state.label("job_cups_state"),
            PrintJob.cups_job_id.label("job_cups_job_id"),
            PrintJob.pages.label("job_pages"),
            PrintJob.options.label("job_options"),
            PrintJob.sheets.label("job_sheets"),
            PrintJob.cost.label("job_cost"),
            PrintJob.refund_trx_id.label("job_refund_trx_id"),
            PrintJob.message.label("job_message"),
            PrintJob.finished_at.label("job_finished_at"),
        )
        .select_from(page)
        .outerjoin(PrintJob, PrintJob.document_id == page.c.shown_print)
        .order_by(*outer_order)
    )


@functools.cache
def _page_query(
    newest_first: bool, has_gte: bool, has_lte: bool, has_user: bool = False
) -> Select[tuple[Any, ...]]:
    """The page statement for one shape of filter, built once; the values are bound."""
    where: list[Any] = [Document.doc_type.in_(bindparam("types", expanding=True))]
    if has_gte:
        where.append(Document.created_at >= bindparam("gte", type_=UTCDateTime))
    if has_lte:
        where.append(Document.created_at <= bindparam("lte", type_=UTCDateTime))
    if has_user:
        # A print's row carries the user of the upload it printed (`log_print`).
        where.append(Document.user_id == bindparam("user_id"))
    return _entries_query(tuple(where), newest_first, paged=True)


@functools.cache
def _one_query(by: str) -> Select[tuple[Any, ...]]:
    """One entry by ``id``, or the newest upload with an ``ext_id`` (as `find_by_ext_id`)."""
    if by == "id":
        return _entries_query((Document.id == bindparam("id"),), True, paged=False)
    return _entries_query((Document.ext_id == bindparam("ext_id"),), True, paged=False)


def releasable_document(
    session: Session, *, user: User, document_id: int, expiry_hours: int, now: datetime
) -> Document:
    """The user's uploaded document that may be printed now.

    NotFound unless it is an `in` entry of this user (another user's document looks the
    same as a missing one); Conflict when its PDF is no longer stored or it has been in the
    inbox longer than ``expiry_hours``.
    """
    document = session.get(Document, document_id)
    if document is None or document.user_id != user.id or document.doc_type != "in":
        raise NotFound(f"Document {document_id} is not in your inbox")
    if not document.store:
        raise Conflict(f"Document {document_id} is no longer stored")
    expires = document.created_at + timedelta(hours=expiry_hours)
    if now >= expires:
        when = expires.isoformat(timespec="seconds")
        raise Conflict(f"Document {document_id} expired from the inbox at {when}")
    return document


# --- retention and clean-up (batch jobs: they open their own transactions) -------------------


def run_retention(db: Database, store: PdfStore, *, days: int, now: datetime | None = None) -> int:
    """Stop keeping PDFs of documents older than ``days`` days; return how many entries changed.

    The log rows stay with ``store`` false; a PDF file goes once no kept entry names it.
    Files go after the commit, so a failed transaction never leaves rows pointing at nothing.
    ``days == 0`` keeps everything.
    """
    if days <= 0:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=days)
    old = (Document.store.is_(True), Document.created_at < cutoff)
    with db.transaction() as session:
        digests = set(session.scalars(select(Document.pdf_sha256).where(*old).distinct()))
        if not digests:
            return 0
        changed = session.execute(update(Document).where(*old).values(store=False)).rowcount
        still_kept = set(
            session.scalars(
                select(Document.pdf_sha256).where(
                    Document.store.is_(True), Document.pdf_sha256.in_(digests)
                )
            )
        )
    for digest in digests - still_kept:
        # A file refreshed after the cutoff was just uploaded again: its new row keeps it.
        store.remove(digest, unless_newer_than=cutoff)
    log.info("retention: %d document(s) older than %d days no longer stored", changed, days)
    return int(changed or 0)


def sweep_orphans(db: Database, store: PdfStore, *, now: datetime | None = None) -> int:
    """Delete stored PDFs no kept document names (older than ``ORPHAN_GRACE``), and stale
    work directories; return how many PDFs went.

    Orphans come from a process that died between storing a PDF and committing its row.
    """
    cutoff = (now or utcnow()) - ORPHAN_GRACE
    with db.read() as session:
        kept = set(session.scalars(select(Document.pdf_sha256).where(Document.store).distinct()))
    removed = 0
    for digest in list(store.digests()):
        if digest not in kept and store.remove(digest, unless_newer_than=cutoff):
            removed += 1
    if store.tmp.is_dir():
        for work in store.tmp.iterdir():
            try:
                # The newest file counts: a slow upload keeps writing into its directory.
                newest = max(p.stat().st_mtime for p in (work, *work.rglob("*")))
            except FileNotFoundError:
                continue
            if newest < cutoff.timestamp():
                _remove_tree(work)
    return removed


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)

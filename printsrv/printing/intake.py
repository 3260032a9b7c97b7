"""A document's way in and out: upload -> checks -> PDF -> log -> (charge -> CUPS), and release.

``accept_upload`` is what ``POST /documents/print`` does once the caller is known and the body
is on disk; ``release`` is ``POST /documents/<id>/print``. Every check that can refuse a
request runs before anything is stored or charged, in this order: queue (404), queue access
(403), ``ipp_options`` syntax (400), ``ext_id`` (400/409), the printer's group access lists
(403, ``printing.access``), file name and size (400), conversion (415), options against the
printer with the page count known (400), the print rules (``printing.rules``: 422 for a
refusal, a hold for approval, or changed options and price), price and credit (402).
Then, in one transaction, the group access lists again (``access.confirm_may_print``: they
may have changed during the conversion), the log entries, the job and its charge, with the
PDF moved into the store last, so a refusal leaves nothing behind. Submission to CUPS
follows the commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from financial.money import ZERO
from printsrv.accounts.idempotency import KeyedRequest, KeyGuard, Reply, user_caller
from printsrv.documents.convert import PageColours, convert, detect_colours
from printsrv.documents.log import (
    check_ext_id,
    get_document,
    log_print,
    log_upload,
    releasable_document,
)
from printsrv.documents.models import Document
from printsrv.documents.store import StoredPdf, sha256_of
from printsrv.errors import Conflict, InvalidInput
from printsrv.people.models import User
from printsrv.platform.models import utcnow
from printsrv.platform.threads import in_thread
from printsrv.platform.uploads import Upload, clean_file_name
from printsrv.printing.access import check_may_print, confirm_may_print
from printsrv.printing.context import PrintContext
from printsrv.printing.costs import CostModel, price
from printsrv.printing.history import released_print
from printsrv.printing.jobs import JobOutcome, create_job, submit_job
from printsrv.printing.models import PrintQueue
from printsrv.printing.options import merge_options, validate_options
from printsrv.printing.printers import cost_from_json, get_printer, info_from_row
from printsrv.printing.printers import validate_for_any_printer as validate_held
from printsrv.printing.queues import (
    RESERVED_QUEUE,
    check_access,
    get_queue,
    parse_ipp_options,
    routing_options,
)
from printsrv.printing.ruled import is_waiting, record_ruled
from printsrv.printing.rules import (
    Judgement,
    PrintRefused,
    apply_changes,
    facts_of,
    judge,
    rules_in_force,
)
from printsrv.printing.types import PrinterInfo

__all__ = [
    "Accepted",
    "PrintPlan",
    "PrintTarget",
    "Ruling",
    "accept_upload",
    "accept_upload_once",
    "plan_print",
    "print_target",
    "quote",
    "release",
    "release_once",
    "rule_print",
]


@dataclass(frozen=True)
class Accepted:
    """What became of an upload or a release.

    Attributes:
        document_id: the uploaded (`in`) document.
        ext_id: its caller reference ("" when none).
        title: its title.
        pages: its page count.
        queue: the queue it came through.
        status: ``held`` (in the inbox), ``waiting`` (a rule holds it for approval),
            ``printing`` (CUPS has it) or ``failed``.
        cost: what was charged (zero when held, waiting, free, or refunded).
        message: why it failed, or what the holding rule says; else "".
        print_document_id: the `print` log entry, when it was printed.
        printer: the printer, when it was printed.
        pages_color, pages_grayscale: how many of its pages have colour and how many are
            grey only, by colour detection; None when not known.
    """

    document_id: int
    ext_id: str
    title: str
    pages: int
    queue: str
    status: str
    cost: Decimal
    message: str = ""
    print_document_id: int | None = None
    printer: str | None = None
    pages_color: int | None = None
    pages_grayscale: int | None = None
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrintPlan:
    """A print that passed the printer's checks: where, with what, for how much."""

    printer: PrinterInfo
    options: dict[str, str]
    cost: Decimal
    agent_id: int | None = None


@dataclass(frozen=True)
class PrintTarget:
    """A printer as stored: its capabilities, its prices (None: free) and, for a remote
    printer, the print agent that prints on it."""

    info: PrinterInfo
    cost_model: CostModel | None
    agent_id: int | None = None


def print_target(session: Session, printer_name: str, user: User) -> PrintTarget:
    """The printer a job for ``user`` goes to, once it is known to exist and to let them print.

    Uploads to a routed queue and releases both resolve their printer here, so the group
    access check (PrintingDenied, 403) cannot be missed by either path.
    """
    row = get_printer(session, printer_name)
    if not row.present:
        raise Conflict(f"Printer '{printer_name}' is no longer on the CUPS server")
    check_may_print(session, user, row)
    return PrintTarget(info_from_row(row), cost_from_json(row.cost_model), row.agent_id)


def _priced_colours(
    layers: tuple[dict[str, str], dict[str, str]], pages: int, colours: PageColours | None
) -> tuple[bool, ...] | None:
    """The per-page colours to price with, or None to price every page by the merged
    ``print-color-mode``.

    A mode set by the queue's routing or the request is priced as asked for every page, as
    SavaPage does (``color``: every page colour, ``monochrome``: every page grayscale); so is
    a document whose colours are not known (colour, unless the mode rules it out). Otherwise,
    including ``auto`` and a printer whose default is colour, a page is priced as what it is.
    """
    mode = merge_options({}, *layers).get("print-color-mode")
    if colours is None or len(colours.colour) != pages or (mode is not None and mode != "auto"):
        return None
    return colours.colour


def plan_print(
    target: PrintTarget,
    layers: tuple[dict[str, str], dict[str, str]],
    pages: int,
    colours: PageColours | None = None,
) -> PrintPlan:
    """Validate the merged options against the printer and price the print."""
    info = target.info
    routing, requested = layers
    merged = merge_options(info.default_options(), routing, requested)
    options = validate_options(merged, info, pages=pages)
    cost = ZERO
    if target.cost_model is not None:
        page_colors = _priced_colours(layers, pages, colours)
        cost = price(pages, options, target.cost_model, page_colors=page_colors)
    return PrintPlan(info, options, cost, target.agent_id)


@dataclass(frozen=True)
class Ruling:
    """A print after the rules: what they decided, and the plan and option layers to print
    with (the rules' changes made and priced).

    Attributes:
        judgement: the rules the print meets (``rules.Judgement``).
        plan: the print as it would go out.
        layers: the queue's routing options and the requested options, changes included.
    """

    judgement: Judgement
    plan: PrintPlan
    layers: tuple[dict[str, str], dict[str, str]]

    @property
    def rule_names(self) -> tuple[str, ...]:
        """The names of the rules that decide the print (refusing, holding, or changing)."""
        judgement = self.judgement
        if judgement.refused_by is not None:
            return (judgement.refused_by.name,)
        if judgement.held_by:
            return tuple(r.name for r in judgement.held_by)
        return tuple(r.name for r in judgement.matched)


def rule_print(
    context: PrintContext,
    *,
    user: User,
    target: PrintTarget,
    queue: str,
    layers: tuple[dict[str, str], dict[str, str]],
    pages: int,
    colours: PageColours | None,
    source_type: str,
) -> Ruling:
    """Plan a print and judge it by the rules in force (one read); blocking, for a thread.

    Raises OptionRejected (400) for options the printer refuses, before any rule is read.
    """
    plan = plan_print(target, layers, pages, colours)
    with context.installation.db.read() as session:
        rules = rules_in_force(session)
        if not rules:
            return Ruling(Judgement(()), plan, layers)
        facts = facts_of(
            session,
            user=user,
            printer=target.info.name,
            queue=queue,
            pages=pages,
            options=plan.options,
            colours=colours,
            source_type=source_type,
        )
    judgement = judge(rules, facts)
    if judgement.changes and judgement.refused_by is None:
        routing, requested = layers
        layers = (routing, apply_changes(requested, judgement.changes, target.info))
        plan = plan_print(target, layers, pages, colours)
    return Ruling(judgement, plan, layers)


def _ruled_source(
    context: PrintContext,
    session: Session,
    user: User,
    *,
    source_id: int | None,
    upload: _NewUpload | None,
    once: bool,
) -> Document:
    """The `in` entry a ruled print belongs to: logged now for an upload; for a release,
    locked, so a hold racing a release of the same document takes turns with it (and with
    ``once``, refused when it has been released already)."""
    if upload is not None:
        return upload.log(session, user)
    assert source_id is not None
    session.execute(select(Document.id).where(Document.id == source_id).with_for_update())
    earlier = released_print(session, source_id) if once else None
    if earlier is not None:
        raise Conflict(f"Document {source_id} has already been released (print job {earlier})")
    return get_document(session, source_id)


def _refuse(
    context: PrintContext,
    ruling: Ruling,
    *,
    user: User,
    source_id: int | None = None,
    upload: _NewUpload | None = None,
    guard: KeyGuard[Accepted] | None = None,
) -> PrintRefused:
    """Log the document as refused by its rule (an upload's PDF is stored like any other's),
    charge nothing, and return the error to raise. With ``guard``, the key is claimed first
    and the refusal stored with the log entry, as a hold's answer is: two requests with one
    key at once log one refusal, and the other is answered with it."""
    rule = ruling.judgement.refused_by
    assert rule is not None
    refused = PrintRefused(rule.name, rule.told)
    with context.installation.db.transaction() as session:
        if guard is not None:
            guard.claim(session)
        if upload is not None:
            source = upload.log(session, user)
        else:
            assert source_id is not None
            source = get_document(session, source_id)
        record_ruled(
            session,
            document_id=source.id,
            user_id=user.id,
            printer=ruling.plan.printer.name,
            state="refused",
            rules=(rule.name,),
            message=rule.told,
            layers=ruling.layers,
            cost=ZERO,
        )
        if guard is not None:
            guard.record_refusal(session, refused)
        if upload is not None:
            context.store.put(upload.pdf, upload.sha256)
    return refused


def _hold_for_approval(
    context: PrintContext,
    ruling: Ruling,
    *,
    user: User,
    source_id: int | None = None,
    upload: _NewUpload | None = None,
    once: bool = False,
    guard: KeyGuard[Accepted] | None = None,
) -> Accepted:
    """Log a print a rule holds: waiting for approval, nothing charged (with ``guard``, its
    key is claimed first and the answer stored with the row)."""
    told = "; ".join(r.told for r in ruling.judgement.held_by)
    with context.installation.db.transaction() as session:
        if guard is not None:
            guard.claim(session)
        source = _ruled_source(
            context, session, user, source_id=source_id, upload=upload, once=once
        )
        record_ruled(
            session,
            document_id=source.id,
            user_id=user.id,
            printer=ruling.plan.printer.name,
            state="waiting",
            rules=ruling.rule_names,
            message=told,
            layers=ruling.layers,
            cost=ruling.plan.cost,
        )
        waiting = Accepted(
            document_id=source.id,
            ext_id=source.ext_id or "",
            title=source.title,
            pages=source.pages,
            queue=source.queue_name,
            status="waiting",
            cost=ZERO,
            message=told,
            printer=ruling.plan.printer.name,
            pages_color=source.pages_color,
            pages_grayscale=source.pages_grayscale,
            rules=ruling.rule_names,
        )
        if guard is not None:
            guard.record(session, waiting)
        if upload is not None:
            context.store.put(upload.pdf, upload.sha256)
    return waiting


async def _print_ruled(
    context: PrintContext,
    ruling: Ruling,
    *,
    user: User,
    client_host: str,
    source_id: int | None = None,
    upload: _NewUpload | None = None,
    once: bool = False,
    guard: KeyGuard[Accepted] | None = None,
) -> Accepted:
    """What the rules decided: refuse (raise PrintRefused), hold, or print as changed."""
    decision = ruling.judgement.decision
    if decision == "refuse":
        raise await in_thread(
            _refuse, context, ruling, user=user, source_id=source_id, upload=upload, guard=guard
        )
    if decision == "hold":
        return await in_thread(
            _hold_for_approval,
            context,
            ruling,
            user=user,
            source_id=source_id,
            upload=upload,
            once=once,
            guard=guard,
        )
    plan = ruling.plan
    logged, outcome = await _print(
        context,
        user=user,
        plan=plan,
        client_host=client_host,
        source_id=source_id,
        upload=upload,
        once=once,
        guard=guard,
    )
    accepted = _accepted(logged, outcome, plan)
    if ruling.judgement.changes:
        accepted = replace(accepted, rules=ruling.rule_names)
    return accepted


def quote(session: Session, *, user: User, document: Document, printer_name: str) -> Decimal:
    """What releasing held ``document`` on ``printer_name`` with the options asked at upload
    costs (a release station shows it before the person releases).

    Raises what ``release`` would for that printer: NotFound, Conflict (printer gone),
    PrintingDenied, OptionRejected. The price follows the print rules' changes (grayscale,
    duplex), as the release's would.
    """
    target = print_target(session, printer_name, user)
    asked = json.loads(document.ipp_options or "{}")
    colours = PageColours.from_text(document.page_colors)
    plan = plan_print(target, ({}, asked), document.pages, colours)
    rules = rules_in_force(session)
    if not rules:
        return plan.cost
    facts = facts_of(
        session,
        user=user,
        printer=target.info.name,
        queue=document.queue_name,
        pages=document.pages,
        options=plan.options,
        colours=colours,
        source_type=document.source_type,
    )
    judgement = judge(rules, facts)
    if judgement.changes and judgement.refused_by is None:
        changed = apply_changes(asked, judgement.changes, target.info)
        plan = plan_print(target, ({}, changed), document.pages, colours)
    return plan.cost


def _title(upload: Upload) -> str:
    title = clean_file_name(upload.file_name)
    return title or "untitled"


@dataclass(frozen=True)
class _NewUpload:
    """An upload that passed every check, ready to be logged and stored."""

    title: str
    pdf: Path
    sha256: str
    pages: int
    source_type: str
    source_bytes: int
    source_sha256: str
    client_address: str
    queue_name: str
    ipp_options: str
    ext_id: str | None
    colours: PageColours | None = None

    def log(self, session: Session, user: User) -> Document:
        """Write the `in` entry (the caller moves the PDF into the store, then commits)."""
        document = log_upload(
            session,
            user=user,
            title=self.title,
            pdf=StoredPdf(self.sha256, self.pdf.stat().st_size, self.pdf, created=False),
            pages=self.pages,
            source_type=self.source_type,
            source_bytes=self.source_bytes,
            source_sha256=self.source_sha256,
            client_address=self.client_address,
            queue_name=self.queue_name,
            ipp_options=self.ipp_options,
            ext_id=self.ext_id,
            colours=self.colours,
        )
        return document


@dataclass(frozen=True)
class _Logged:
    """The log entries a print wrote, read while their transaction was open."""

    source_id: int
    ext_id: str
    title: str
    pages: int
    queue: str
    pdf_sha256: str
    print_id: int
    job_id: int
    pages_color: int | None = None
    pages_grayscale: int | None = None


def _log_and_charge(
    context: PrintContext,
    *,
    user: User,
    plan: PrintPlan,
    client_host: str,
    source_id: int | None,
    upload: _NewUpload | None,
    once: bool = False,
    guard: KeyGuard[Accepted] | None = None,
) -> _Logged:
    """One transaction: (the upload's entry,) the print entry, the job and its charge; the
    uploaded PDF moves into the store last, so a refused print leaves no file behind.

    With ``guard``, its Idempotency-Key is claimed first (a retry that raced the first
    request stops here, ``Answered``) and the answer "printing" is stored with the charge.
    """
    with context.installation.db.transaction() as session:
        if guard is not None:
            guard.claim(session)
        # Checked before converting too, but the lists may have changed since (a conversion
        # takes seconds): the charge must obey them as they are now.
        confirm_may_print(session, user, plan.printer.name)
        # ``user`` is detached: only its id and name are read, so it is not loaded again.
        if upload is not None:
            source = upload.log(session, user)
        else:
            assert source_id is not None
            if once:
                # The source row's lock makes two releases racing each other take turns, so
                # the second sees the first's job (SQLite's write lock does the same).
                session.execute(
                    select(Document.id).where(Document.id == source_id).with_for_update()
                )
                earlier = released_print(session, source_id)
                if earlier is not None:
                    raise Conflict(
                        f"Document {source_id} has already been released (print job {earlier})"
                    )
            source = get_document(session, source_id)
        print_document = log_print(session, source=source, client_address=client_host)
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
        logged = _Logged(
            source.id,
            source.ext_id or "",
            source.title,
            source.pages,
            source.queue_name,
            source.pdf_sha256,
            print_document.id,
            job.id,
            source.pages_color,
            source.pages_grayscale,
        )
        if guard is not None:
            # What the answer says while CUPS has not been asked; KeyGuard.run replaces it
            # with the final one (printing or failed) once CUPS has answered.
            provisional = JobOutcome(job.id, "submitted", None, "")
            guard.record(session, _accepted(logged, provisional, plan))
        if upload is not None:
            context.store.put(upload.pdf, upload.sha256)
    return logged


async def _print(
    context: PrintContext,
    *,
    user: User,
    plan: PrintPlan,
    client_host: str,
    source_id: int | None = None,
    upload: _NewUpload | None = None,
    once: bool = False,
    guard: KeyGuard[Accepted] | None = None,
) -> tuple[_Logged, JobOutcome]:
    """Log (the upload and) the print and charge it, then hand it to CUPS (a remote
    printer's job waits for its print agent instead)."""
    logged = await in_thread(
        _log_and_charge,
        context,
        user=user,
        plan=plan,
        client_host=client_host,
        source_id=source_id,
        upload=upload,
        once=once,
        guard=guard,
    )
    if plan.agent_id is not None:
        return logged, JobOutcome(logged.job_id, "queued", None, "")
    outcome = await submit_job(
        context,
        job_id=logged.job_id,
        printer=plan.printer.name,
        pdf_path=str(context.store.path_for(logged.pdf_sha256)),
        title=logged.title,
        options=plan.options,
        user_name=user.user_name,
    )
    return logged, outcome


def _accepted(logged: _Logged, outcome: JobOutcome, plan: PrintPlan) -> Accepted:
    failed = outcome.state == "failed"
    return Accepted(
        document_id=logged.source_id,
        ext_id=logged.ext_id,
        title=logged.title,
        pages=logged.pages,
        queue=logged.queue,
        status="failed" if failed else "printing",
        cost=ZERO if failed else plan.cost,
        message=outcome.message if failed else "",
        print_document_id=logged.print_id,
        printer=plan.printer.name,
        pages_color=logged.pages_color,
        pages_grayscale=logged.pages_grayscale,
    )


@dataclass(frozen=True)
class _Checked:
    """An upload's request after the checks that need no conversion."""

    queue: str
    routed_to: PrintTarget | None
    routing: dict[str, str]
    requested: dict[str, str]
    ext_id: str | None
    title: str


def _check_request(
    context: PrintContext, *, user: User, upload: Upload, client_host: str
) -> _Checked:
    fields = upload.fields
    if upload.path is None:
        raise InvalidInput("The request has no 'file' part: send the document as -F file=@NAME")
    with context.installation.db.read() as session:
        queue: PrintQueue = get_queue(session, fields.get("queue") or RESERVED_QUEUE)
        check_access(queue, client_host)
        routing = routing_options(queue)
        requested = parse_ipp_options(fields.get("ipp_options"))
        ext_id = check_ext_id(fields.get("ext_id"))
        if ext_id is not None:
            taken = session.scalar(
                select(Document.id).where(Document.user_id == user.id, Document.ext_id == ext_id)
            )
            if taken is not None:
                raise Conflict(f"ext_id {ext_id!r} is already used by document {taken}")
        target = print_target(session, queue.printer_name, user) if queue.printer_name else None
    title = _title(upload)
    if upload.size == 0:
        raise InvalidInput(f"The file '{title}' is empty")
    # Options are checked once before converting (a bad request should not cost a
    # conversion) and again with the page count, which page-ranges needs.
    if target is None:
        requested = validate_held(requested)
    else:
        merged = merge_options(target.info.default_options(), routing, requested)
        validate_options(merged, target.info)
    return _Checked(queue.name, target, routing, requested, ext_id, title)


def _hold(
    context: PrintContext, user: User, new: _NewUpload, guard: KeyGuard[Accepted] | None = None
) -> Accepted:
    """Log a held upload and store its PDF (with ``guard``, claim its key first and store
    the answer with the log entry)."""
    with context.installation.db.transaction() as session:
        if guard is not None:
            guard.claim(session)
        document = new.log(session, user)
        colours = new.colours
        held = Accepted(
            document.id,
            new.ext_id or "",
            new.title,
            new.pages,
            new.queue_name,
            "held",
            ZERO,
            pages_color=None if colours is None else colours.pages_color,
            pages_grayscale=None if colours is None else colours.pages_grayscale,
        )
        if guard is not None:
            guard.record(session, held)
        context.store.put(new.pdf, new.sha256)
        return held


async def accept_upload(
    context: PrintContext,
    *,
    user: User,
    upload: Upload,
    client_host: str,
    work_dir: Path,
    guard: KeyGuard[Accepted] | None = None,
) -> Accepted:
    """Take an uploaded document: hold it in the inbox, or print it through a routed queue.

    Raises InvalidInput (400), NotFound (404 queue), NotAllowed (403: queue access, or
    PrintingDenied by the printer's group lists), Conflict (409 ext_id),
    ConversionFailed (415), OptionRejected (400), PrintRefused (422: a print rule),
    CreditExceeded (402). A print a rule holds is answered with ``status`` ``waiting``.
    A CUPS failure after the charge is not raised: the job is failed and refunded and
    ``status`` says ``failed``.
    Database work runs in threads: a SQLite writer may wait for its lock, never the loop.
    """
    checked = await in_thread(
        _check_request, context, user=user, upload=upload, client_host=client_host
    )
    assert upload.path is not None
    converted = await convert(upload.path, work_dir, name=checked.title, limits=context.limits)
    if converted.pdf == upload.path:
        sha256 = upload.sha256
    else:
        sha256 = await in_thread(sha256_of, converted.pdf)
    # Detected for every upload, held ones too: the log shows the counts, and a release
    # prices from them later without rendering the PDF again.
    colours = await detect_colours(
        converted.pdf, pages=converted.pages, name=checked.title, limits=context.limits
    )
    new = _NewUpload(
        title=checked.title,
        pdf=converted.pdf,
        sha256=sha256,
        pages=converted.pages,
        source_type=converted.source_type,
        source_bytes=upload.size,
        source_sha256=upload.sha256,
        client_address=client_host,
        queue_name=checked.queue,
        ipp_options=json.dumps(checked.requested, sort_keys=True),
        ext_id=checked.ext_id,
        colours=colours,
    )
    if checked.routed_to is None:
        return await in_thread(_hold, context, user, new, guard)
    ruling = await in_thread(
        rule_print,
        context,
        user=user,
        target=checked.routed_to,
        queue=checked.queue,
        layers=(checked.routing, checked.requested),
        pages=converted.pages,
        colours=colours,
        source_type=converted.source_type,
    )
    return await _print_ruled(
        context, ruling, user=user, client_host=client_host, upload=new, guard=guard
    )


async def accept_upload_once(
    context: PrintContext,
    *,
    user: User,
    upload: Upload,
    client_host: str,
    work_dir: Path,
    request: KeyedRequest[Accepted],
) -> Reply:
    """``accept_upload`` at most once per Idempotency-Key (``idempotency.KeyGuard``).

    A retry (same key, same request) gets the first answer, a refusal included, and nothing
    is converted, logged, charged or printed again; the same key with another request is a
    Conflict (409). Keys are the user's, shared with their other POSTs.
    """
    guard = request.guard(context.installation.db, caller=user_caller(user.user_name))
    return await guard.run(
        lambda guard: accept_upload(
            context,
            user=user,
            upload=upload,
            client_host=client_host,
            work_dir=work_dir,
            guard=guard,
        )
    )


@dataclass(frozen=True)
class _Releasable:
    """A document that may be printed: the options asked at upload, its page count,
    digest, colours, queue and uploaded type, and the printer to print it on."""

    asked: dict[str, str]
    pages: int
    digest: str
    target: PrintTarget
    colours: PageColours | None
    queue: str
    source_type: str


def _releasable(
    context: PrintContext, user: User, document_id: int, printer_name: str
) -> _Releasable:
    """The document the user releases, once it is theirs, in the inbox, not waiting for an
    approval, and the printer lets them print."""
    with context.installation.db.read() as session:
        source = releasable_document(
            session,
            user=user,
            document_id=document_id,
            expiry_hours=context.inbox_expiry_hours,
            now=utcnow(),
        )
        if is_waiting(session, document_id):
            raise Conflict(f"Document {document_id} is waiting for approval")
        target = print_target(session, printer_name, user)
        return _Releasable(
            asked=json.loads(source.ipp_options or "{}"),
            pages=source.pages,
            digest=source.pdf_sha256,
            target=target,
            colours=PageColours.from_text(source.page_colors),
            queue=source.queue_name,
            source_type=source.source_type,
        )


async def release(
    context: PrintContext,
    *,
    user: User,
    document_id: int,
    printer_name: str,
    ipp_options: str | None,
    client_host: str,
    once: bool = False,
    guard: KeyGuard[Accepted] | None = None,
) -> Accepted:
    """Print a document from the user's inbox on ``printer_name``.

    With ``once`` (the web app's release button), a document that already has a print
    queued, out or done is refused with Conflict, checked inside the charging transaction
    so that two clicks racing each other print and charge once. The REST release prints a
    document again when asked, as SavaPage's does.

    The options asked for at upload apply, overridden by ``ipp_options`` given now. Raises
    NotFound (not the user's document, unknown printer), PrintingDenied (403: the printer's
    group lists refuse the user), Conflict (expired, PDF gone, waiting for approval),
    OptionRejected (400), PrintRefused (422: a print rule), CreditExceeded (402). A print
    a rule holds is answered with ``status`` ``waiting`` and nothing is charged.
    """
    if not printer_name or not printer_name.strip():
        raise InvalidInput("Say which printer: printer=NAME")
    release_options = parse_ipp_options(ipp_options)
    found = await in_thread(_releasable, context, user, document_id, printer_name.strip())
    requested = merge_options(found.asked, {}, release_options)
    ruling = await in_thread(
        rule_print,
        context,
        user=user,
        target=found.target,
        queue=found.queue,
        layers=({}, requested),
        pages=found.pages,
        colours=found.colours,
        source_type=found.source_type,
    )
    if not context.store.has(found.digest):
        raise Conflict(f"The PDF of document {document_id} is missing from the store")
    return await _print_ruled(
        context,
        ruling,
        user=user,
        client_host=client_host,
        source_id=document_id,
        once=once,
        guard=guard,
    )


async def release_once(
    context: PrintContext,
    *,
    user: User,
    document_id: int,
    printer_name: str,
    ipp_options: str | None,
    client_host: str,
    request: KeyedRequest[Accepted],
) -> Reply:
    """``release`` at most once per Idempotency-Key (as ``accept_upload_once``).

    Only a retry with the same key is answered from the first release: releasing a
    document again with another key, or without one, prints it again.
    """
    guard = request.guard(context.installation.db, caller=user_caller(user.user_name))
    return await guard.run(
        lambda guard: release(
            context,
            user=user,
            document_id=document_id,
            printer_name=printer_name,
            ipp_options=ipp_options,
            client_host=client_host,
            guard=guard,
        )
    )

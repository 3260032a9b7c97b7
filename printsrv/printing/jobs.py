"""Print jobs: create (and charge), submit to CUPS, follow, finish (and refund) exactly once.

A job's life, all of it in the ``print_job`` row:

    queued ──submit──> submitted ──CUPS final──> completed | canceled | aborted
       │                   │
       └──────────────┬────┘ CUPS refused / unreachable / job lost / timed out
                      v
                    failed

The charge is written with the ``queued`` row; leaving an open state (queued, submitted) is
one conditional UPDATE, and a refund for canceled, aborted or failed is written in that same
transaction. Whoever loses the race (a second tracker, a restarted one, the request that
submitted) updates nothing and refunds nothing.

A request that is submitting holds a lease on its queued job, so trackers leave it alone;
if the process dies before CUPS answers, the lease runs out and a tracker fails the job and
refunds it. (If CUPS had in fact taken the job, the print is free: refunding is the error
printsrv prefers to charging twice.)
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from financial.money import ZERO
from printsrv.documents.models import Document
from printsrv.people.models import User
from printsrv.platform.database import Database
from printsrv.platform.models import utcnow
from printsrv.platform.notifications import Topic, announce
from printsrv.platform.threads import in_thread
from printsrv.printing.charging import charge_print, refund_print
from printsrv.printing.context import PrintContext
from printsrv.printing.costs import count_sheets
from printsrv.printing.errors import CupsUnavailable, JobNotFound, PrintingError
from printsrv.printing.models import PrintJob
from printsrv.printing.remote import announce_remote_job
from printsrv.printing.types import JobStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = [
    "FINAL_STATES",
    "OPEN_STATES",
    "REFUND_STATES",
    "JobOutcome",
    "Verdict",
    "create_job",
    "finish_job",
    "look_at_job",
    "record_verdicts",
    "submit_job",
    "submit_job_sync",
]

OPEN_STATES: Final = ("queued", "submitted")
FINAL_STATES: Final = ("completed", "canceled", "aborted", "failed")
REFUND_STATES: Final = frozenset({"canceled", "aborted", "failed"})
# Beyond the CUPS call limit, how long a submitting request keeps trackers off its job.
SUBMIT_LEASE_MARGIN: Final = timedelta(seconds=30)


@dataclass(frozen=True)
class JobOutcome:
    """Where a job stands after a submission or a tracker round.

    Attributes:
        job_id: the print job.
        state: queued, submitted, completed, canceled, aborted or failed.
        cups_job_id: the CUPS job id, once CUPS has the job.
        message: why a job failed, or CUPS' latest message.
    """

    job_id: int
    state: str
    cups_job_id: int | None
    message: str


def create_job(
    session: Session,
    *,
    user: User,
    print_document: Document,
    printer: str,
    options: dict[str, str],
    cost: Decimal,
    context: PrintContext,
    agent_id: int | None = None,
) -> PrintJob:
    """Create a queued job for ``print_document`` and charge its cost (when not zero).

    The job is leased to the caller for the length of one submission. A job for a remote
    printer (``agent_id``) is not: it waits for its agent to claim it, and the agent's
    long-polls are woken when the transaction commits. Raises ``CreditExceeded`` /
    ``AccountBlocked`` from the charge; the caller's transaction then rolls back the job
    and the log entry with it.
    """
    now = utcnow()
    remote = agent_id is not None
    sides, sheets = count_sheets(print_document.pages, options)
    job = PrintJob(
        document_id=print_document.id,
        user_id=user.id,
        printer_name=printer,
        options=json.dumps(options, sort_keys=True),
        pages=print_document.pages,
        sides=sides,
        sheets=sheets,
        cost=cost,
        state="queued",
        created_at=now,
        next_poll_at=now,
        lease_owner=None if remote else "submit",
        lease_until=None
        if remote
        else now + timedelta(seconds=context.cups_timeout) + SUBMIT_LEASE_MARGIN,
        agent_id=agent_id,
    )
    session.add(job)
    session.flush()
    if agent_id is not None:
        announce_remote_job(session, agent_id)
    if cost > ZERO:
        trx = charge_print(
            session,
            user_name=user.user_name,
            amount=cost,
            document_id=print_document.id,
            comment=f"Print of document {print_document.id} on {printer} ({sheets} sheets)",
            default_credit_limit=context.default_credit_limit,
        )
        job.charge_trx_id = trx.id
        session.flush()
    return job


def finish_job(
    session: Session, job_id: int, state: str, message: str, *, cups_state: str | None = None
) -> bool:
    """Move a job from an open state to ``state``; refund it for canceled, aborted or failed.

    Returns False (and changes nothing) when the job was already final: another worker got
    there first. Only the winner of the conditional UPDATE writes the refund.
    """
    if state not in FINAL_STATES:
        raise ValueError(f"{state!r} is not a final job state")
    values: dict[str, object] = {
        "state": state,
        "message": message[:2000],
        "finished_at": utcnow(),
        "lease_owner": None,
        "lease_until": None,
    }
    if cups_state is not None:
        values["cups_state"] = cups_state
    row = session.execute(
        update(PrintJob)
        .where(PrintJob.id == job_id, PrintJob.state.in_(OPEN_STATES))
        .values(**values)
        .returning(PrintJob.charge_trx_id, PrintJob.document_id)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return False
    charge_trx_id, document_id = row
    if state in REFUND_STATES and charge_trx_id is not None:
        refund = refund_print(
            session,
            charge_trx_id=charge_trx_id,
            reason=f"print of document {document_id} {state}: {message}" if message else state,
        )
        session.execute(
            update(PrintJob)
            .where(PrintJob.id == job_id)
            .values(refund_trx_id=refund.id)
            .execution_options(synchronize_session=False)
        )
    return True


def _finish(db: Database, job_id: int, state: str, message: str, cups_state: str | None) -> bool:
    with db.transaction() as session:
        return finish_job(session, job_id, state, message, cups_state=cups_state)


def _mark_submitted(db: Database, job_id: int, cups_job_id: int) -> bool:
    now = utcnow()
    with db.transaction() as session:
        result = session.execute(
            update(PrintJob)
            .where(PrintJob.id == job_id, PrintJob.state == "queued")
            .values(
                state="submitted",
                cups_job_id=cups_job_id,
                cups_state="pending",
                submitted_at=now,
                next_poll_at=now + timedelta(milliseconds=250),
                lease_owner=None,
                lease_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        # The trackers of every server: this job is theirs to follow in 250 ms.
        announce(session, Topic.PRINT_JOBS)
        return bool(result.rowcount)


# Tasks started from callbacks; held here so they are not collected before they finish.
_background: set[asyncio.Future[JobStatus]] = set()


def _cancel_late(context: PrintContext, job_id: int, task: asyncio.Future[int]) -> None:
    """When CUPS answers a submission after we gave up on it, cancel the job it made."""

    def cancelled(future: asyncio.Future[JobStatus]) -> None:
        _background.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.warning(
                "could not cancel the late CUPS job of job %s: %s", job_id, future.exception()
            )

    def done(finished: asyncio.Future[int]) -> None:
        if finished.cancelled() or finished.exception() is not None:
            return
        cups_id = finished.result()
        log.warning("job %s reached CUPS as %s after its time-out; cancelling it", job_id, cups_id)
        future = asyncio.ensure_future(context.cups.cancel(cups_id))
        _background.add(future)
        future.add_done_callback(cancelled)

    task.add_done_callback(done)


async def submit_job(
    context: PrintContext,
    *,
    job_id: int,
    printer: str,
    pdf_path: str,
    title: str,
    options: dict[str, str],
    user_name: str,
) -> JobOutcome:
    """Send a queued job's PDF to CUPS and record the CUPS job id.

    When CUPS refuses it or cannot be reached, the job fails with the reason and is refunded;
    the outcome says so. Never raises for a CUPS problem.
    """
    db = context.installation.db
    task = asyncio.ensure_future(context.cups.submit(printer, pdf_path, title, options, user_name))
    try:
        # shield: on time-out the submission keeps running, so its late answer can be undone.
        cups_job_id = await asyncio.wait_for(asyncio.shield(task), context.cups_timeout)
    except TimeoutError:
        _cancel_late(context, job_id, task)
        message = (
            f"CUPS server '{context.cups.server}' did not answer within "
            f"{context.cups_timeout:.0f} s"
        )
        await in_thread(_finish, db, job_id, "failed", message, None)
        return JobOutcome(job_id, "failed", None, message)
    except PrintingError as exc:
        await in_thread(_finish, db, job_id, "failed", exc.message, None)
        return JobOutcome(job_id, "failed", None, exc.message)
    if not await in_thread(_mark_submitted, db, job_id, cups_job_id):
        # A tracker declared the job lost (our lease ran out) and refunded it: undo the print.
        message = "the job reached CUPS after it had been given up; it was cancelled"
        try:
            await context.call_cups(context.cups.cancel(cups_job_id))
        except PrintingError as exc:
            log.warning(
                "could not cancel CUPS job %s of given-up job %s: %s", cups_job_id, job_id, exc
            )
        return JobOutcome(job_id, "failed", cups_job_id, message)
    return JobOutcome(job_id, "submitted", cups_job_id, "")


def submit_job_sync(
    context: PrintContext,
    *,
    job_id: int,
    printer: str,
    pdf_path: str,
    title: str,
    options: dict[str, str],
    user_name: str,
) -> JobOutcome:
    """``submit_job`` for callers that are not on the event loop (an approval from the CLI,
    JSON-RPC or a REST request's thread): the same outcomes, waiting for CUPS in this thread
    at most ``cups.timeout-secs`` (a submission that lands later is cancelled).

    Never raises for a CUPS problem: the job fails with the reason and is refunded.
    """
    db = context.installation.db
    try:
        cups_job_id = context.cups.submit_sync(
            printer, pdf_path, title, options, user_name, timeout=context.cups_timeout
        )
    except PrintingError as exc:
        _finish(db, job_id, "failed", exc.message, None)
        return JobOutcome(job_id, "failed", None, exc.message)
    if not _mark_submitted(db, job_id, cups_job_id):
        message = "the job reached CUPS after it had been given up; it was cancelled"
        try:
            context.cups.cancel_sync(cups_job_id)
        except PrintingError as exc:
            log.warning(
                "could not cancel CUPS job %s of given-up job %s: %s", cups_job_id, job_id, exc
            )
        return JobOutcome(job_id, "failed", cups_job_id, message)
    return JobOutcome(job_id, "submitted", cups_job_id, "")


def _next_poll(now: datetime, submitted_at: datetime | None) -> datetime:
    """Look again after half the job's age (0.25 s to 5 s): a job that finishes in a moment
    is seen at once, and a queue of waiting jobs costs CUPS a few questions each, not one
    every fraction of a second."""
    age = (now - submitted_at).total_seconds() if submitted_at else 0.0
    return now + timedelta(seconds=min(5.0, max(0.25, age / 2)))


@dataclass(frozen=True)
class Verdict:
    """What one look at a job decided: finish it (``final`` set) or look again later.

    Attributes:
        job_id: the job.
        cups_job_id: its CUPS id, if it has one.
        final: the final state to record, or None to keep waiting.
        message: the failure reason (final) or CUPS' latest message (waiting).
        cups_state: CUPS' state, when CUPS answered.
        next_poll_at: when to look again (waiting only).
        cups_failed: True when CUPS could not be asked (counts towards ``poll_failures``).
    """

    job_id: int
    cups_job_id: int | None
    final: str | None
    message: str
    cups_state: str | None = None
    next_poll_at: datetime | None = None
    cups_failed: bool = False

    def outcome(self) -> JobOutcome:
        """The verdict as the outcome a caller sees."""
        return JobOutcome(self.job_id, self.final or "submitted", self.cups_job_id, self.message)


async def look_at_job(
    context: PrintContext,
    *,
    job_id: int,
    state: str,
    cups_job_id: int | None,
    submitted_at: datetime | None,
) -> Verdict:
    """Ask CUPS about a claimed job and decide; writes nothing (see ``record_verdicts``).

    A queued job whose submission lease ran out is failed; a submitted one is asked about:
    final in CUPS -> finished (refunded unless completed); unknown to CUPS -> failed; older
    than ``print.job.timeout-secs`` -> cancelled in CUPS, then finished as CUPS says; CUPS
    unreachable -> asked again later (a job CUPS may still print is never refunded blindly).
    """
    now = utcnow()
    if state == "queued" or cups_job_id is None:
        return Verdict(job_id, None, "failed", "the server stopped before the job reached CUPS")
    try:
        status: JobStatus = await context.call_cups(context.cups.job_state(cups_job_id))
        age = (now - submitted_at).total_seconds() if submitted_at else 0.0
        if not status.final and age > context.job_timeout:
            status = await context.call_cups(context.cups.cancel(cups_job_id))
            if status.final and status.state != "completed":
                reason = status.message or status.state
                message = f"not finished after {context.job_timeout:.0f} s ({reason}); cancelled"
                return Verdict(job_id, cups_job_id, status.state, message, status.state)
    except JobNotFound:
        return Verdict(job_id, cups_job_id, "failed", f"CUPS no longer knows job {cups_job_id}")
    except (CupsUnavailable, PrintingError) as exc:
        return Verdict(
            job_id,
            cups_job_id,
            None,
            f"waiting for CUPS: {exc.message}",
            next_poll_at=now + timedelta(seconds=2),
            cups_failed=True,
        )
    if status.final:
        # A completed job's message may be an old printer message; keep it only for failures.
        message = "" if status.state == "completed" else (status.message or status.state)
        return Verdict(job_id, cups_job_id, status.state, message, status.state)
    return Verdict(
        job_id,
        cups_job_id,
        None,
        status.message,
        status.state,
        next_poll_at=_next_poll(now, submitted_at),
    )


def record_verdicts(db: Database, verdicts: list[Verdict], owner: str) -> None:
    """Write what a round of looks decided: each finish in its own transaction (so one bad
    row cannot hold back the others), every "look again later" together in one."""
    completed = [v.job_id for v in verdicts if v.final == "completed"]
    if completed:
        # Completed jobs are never refunded, so they can all be finished by one statement;
        # the state condition keeps it exactly-once like ``finish_job``.
        with db.transaction() as session:
            session.execute(
                update(PrintJob)
                .where(PrintJob.id.in_(completed), PrintJob.state.in_(OPEN_STATES))
                .values(
                    state="completed",
                    cups_state="completed",
                    message="",
                    finished_at=utcnow(),
                    lease_owner=None,
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )
    for verdict in verdicts:
        if verdict.final is not None and verdict.final != "completed":
            _finish(db, verdict.job_id, verdict.final, verdict.message, verdict.cups_state)
    waiting = [v for v in verdicts if v.final is None]
    if not waiting:
        return
    with db.transaction() as session:
        # CUPS' state is shown in the document log: writing it when it has not changed
        # would empty every server's page cache on each poll of every open job.
        known = dict(
            session.execute(
                select(PrintJob.id, PrintJob.cups_state).where(
                    PrintJob.id.in_([v.job_id for v in waiting if v.cups_state is not None])
                )
            ).all()
        )
        for verdict in waiting:
            values: dict[str, object] = {
                "message": verdict.message[:2000],
                "next_poll_at": verdict.next_poll_at,
                "poll_failures": PrintJob.poll_failures + 1 if verdict.cups_failed else 0,
                "lease_owner": None,
                "lease_until": None,
            }
            if verdict.cups_state is not None and verdict.cups_state != known.get(verdict.job_id):
                values["cups_state"] = verdict.cups_state
            session.execute(
                update(PrintJob)
                .where(
                    PrintJob.id == verdict.job_id,
                    PrintJob.state.in_(OPEN_STATES),
                    PrintJob.lease_owner == owner,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )

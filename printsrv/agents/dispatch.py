"""Remote jobs between the central server and their agent: claim, renew, report, expire.

A job for a remote printer is a ``print_job`` row with ``agent_id`` set, charged when it
was accepted (printing.jobs.create_job). Its life:

    queued ──claim──> queued+lease ──"processing"──> submitted ──"completed"──> completed
      ^                   │ lease lapses, or "failed"/"released"      │ "failed" / "aborted"
      └───────────────────┤ (attempts < agents.max-attempts)          │ / "canceled"
                          v                                           v
                  failed + refunded  <──── attempts used up ──── (same rule)

- A **claim** is one conditional UPDATE (state queued, this agent's, no lease or a lapsed
  one, attempts left) that sets a fresh claim token in ``lease_owner``, the lease in
  ``lease_until`` and counts the attempt: two agents, or two polls of one agent on two
  machines, never both win it.
- Every later call names the claim: a report or renewal from a claim that is no longer the
  job's (it lapsed and the job was claimed again, or the job ended) changes nothing and is
  refused (Conflict). A lapsed claim that nobody took over still counts: the agent that
  was away reports what its CUPS did.
- Once the agent says its CUPS has the job (``processing``), a lapsed lease no longer
  makes the job fetchable again: the paper may be coming out, and only that agent can say
  how it ended (after a restart it reconciles from its journal). Removing the agent fails
  and refunds such jobs.
- Finishing and refunding go through ``printing.jobs.finish_job``: exactly once.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from printsrv.agents.models import Agent
from printsrv.agents.printers import local_name
from printsrv.documents.models import Document
from printsrv.errors import Conflict, InvalidInput, NotFound
from printsrv.people.models import User
from printsrv.platform.models import utcnow
from printsrv.printing.jobs import OPEN_STATES, finish_job
from printsrv.printing.models import PrintJob

__all__ = [
    "REPORT_STATES",
    "ClaimedJob",
    "Report",
    "cancel_remote_job",
    "claim_batch",
    "claim_next",
    "expire_lapsed",
    "has_claimable",
    "job_pdf",
    "lapsed_jobs",
    "parse_report",
    "parse_reports",
    "record_report",
    "renew_claim",
]

MAX_ROW_ID: Final = 2**31 - 1  # the largest id PostgreSQL's INTEGER (print_job.id) holds
REPORT_STATES: Final = ("processing", "completed", "failed", "aborted", "canceled", "released")
_CANDIDATES: Final = 5


@dataclass(frozen=True)
class ClaimedJob:
    """A job an agent has just claimed: everything it needs to print it.

    Attributes:
        job_id: the print job.
        claim: the claim token every later call about the job must name.
        printer: the agent's own name of the printer (its CUPS queue).
        title: the document's title (the CUPS job name carries the job id too).
        user_name: who printed it.
        options: the validated IPP options.
        pages: the document's page count.
        pdf_sha256: the PDF's digest (the agent checks what it downloaded).
        attempt: which claim of the job this is (1, 2, ...).
        lease_until: when the claim lapses unless renewed.
    """

    job_id: int
    claim: str
    printer: str
    title: str
    user_name: str
    options: dict[str, str]
    pages: int
    pdf_sha256: str
    attempt: int
    lease_until: datetime


def _claimable(agent_id: int, now: datetime, max_attempts: int) -> tuple[object, ...]:
    return (
        PrintJob.agent_id == agent_id,
        PrintJob.state == "queued",
        or_(PrintJob.lease_until.is_(None), PrintJob.lease_until < now),
        PrintJob.attempts < max_attempts,
    )


def has_claimable(session: Session, agent_id: int, *, max_attempts: int, now: datetime) -> bool:
    """Whether a job waits for the agent (a read: the long-poll asks this before claiming)."""
    found = session.scalar(
        select(PrintJob.id).where(*_claimable(agent_id, now, max_attempts)).limit(1)
    )
    return found is not None


def claim_next(
    session: Session, agent: Agent, *, lease_secs: int, max_attempts: int, now: datetime
) -> ClaimedJob | None:
    """Claim the agent's oldest fetchable job, or return None when there is none."""
    claimed = claim_batch(
        session, agent, limit=1, lease_secs=lease_secs, max_attempts=max_attempts, now=now
    )
    return claimed[0] if claimed else None


def claim_batch(
    session: Session,
    agent: Agent,
    *,
    limit: int,
    lease_secs: int,
    max_attempts: int,
    now: datetime,
) -> list[ClaimedJob]:
    """Claim up to ``limit`` of the agent's oldest fetchable jobs, oldest first, each with a
    lease and a claim of its own (one conditional UPDATE per job, as for one job: a job
    another poll won meanwhile is skipped, never shared)."""
    candidates = list(
        session.scalars(
            select(PrintJob.id)
            .where(*_claimable(agent.id, now, max_attempts))
            .order_by(PrintJob.id)
            .limit(limit + _CANDIDATES - 1)
        )
    )
    lease_until = now + timedelta(seconds=lease_secs)
    won: dict[int, str] = {}
    for job_id in candidates:
        if len(won) >= limit:
            break
        claim = f"{agent.id}.{job_id}.{secrets.token_urlsafe(12)}"
        taken = session.execute(
            update(PrintJob)
            .where(PrintJob.id == job_id, *_claimable(agent.id, now, max_attempts))
            .values(
                lease_owner=claim,
                lease_until=lease_until,
                attempts=PrintJob.attempts + 1,
                message="",
            )
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount:
            won[job_id] = claim
        # else another poll (another machine) won this one
    if not won:
        return []
    rows = session.execute(
        select(PrintJob, Document, User.user_name)
        .join(Document, Document.id == PrintJob.document_id)
        .join(User, User.id == PrintJob.user_id)
        .where(PrintJob.id.in_(list(won)))
        .order_by(PrintJob.id)
    ).all()
    return [
        ClaimedJob(
            job_id=job.id,
            claim=won[job.id],
            printer=local_name(agent.name, job.printer_name),
            title=document.title,
            user_name=user_name,
            options=json.loads(job.options or "{}"),
            pages=job.pages,
            pdf_sha256=document.pdf_sha256,
            attempt=job.attempts,
            lease_until=lease_until,
        )
        for job, document, user_name in rows
    ]


def _held(session: Session, agent: Agent, job_id: int, claim: str) -> PrintJob:
    """The agent's open job held by ``claim``, locked for this transaction.

    NotFound when the job is not this agent's (another agent's job looks like no job);
    Conflict when the claim is no longer the job's or the job has ended.
    """
    if not 0 <= job_id <= MAX_ROW_ID:
        # No row has it, and the database would refuse the comparison itself (an overflow).
        raise NotFound(f"Agent '{agent.name}' has no job {str(job_id)[:30]}")
    job = session.scalar(
        select(PrintJob)
        .where(PrintJob.id == job_id, PrintJob.agent_id == agent.id)
        .with_for_update()
    )
    if job is None:
        raise NotFound(f"Agent '{agent.name}' has no job {job_id}")
    if job.state not in OPEN_STATES:
        raise Conflict(f"Job {job_id} has ended ({job.state}); forget it", reason="ended")
    if not isinstance(claim, str) or job.lease_owner != claim:
        raise Conflict(
            f"Job {job_id} is no longer held by this claim (it lapsed and was claimed again)",
            reason="claim",
        )
    return job


def job_pdf(session: Session, agent: Agent, job_id: int, claim: str) -> tuple[str, str]:
    """(digest, title) of the PDF of a job the agent holds; NotFound / Conflict as ``_held``."""
    job = _held(session, agent, job_id, claim)
    document = session.get(Document, job.document_id)
    assert document is not None
    if not document.store:
        raise Conflict(f"The PDF of job {job_id} is no longer kept", reason="pdf")
    return document.pdf_sha256, document.title


def renew_claim(
    session: Session, agent: Agent, job_id: int, claim: str, *, lease_secs: int, now: datetime
) -> datetime:
    """Extend the agent's claim on a job; return the new end of the lease."""
    job = _held(session, agent, job_id, claim)
    job.lease_until = now + timedelta(seconds=lease_secs)
    session.flush()
    return job.lease_until


@dataclass(frozen=True)
class Report:
    """What an agent says about a job it holds.

    Attributes:
        claim: the claim token.
        state: processing (its CUPS has it), completed, failed, aborted, canceled, or
            released (it gives the job back unprinted).
        cups_job_id: the job's id in the agent's CUPS, once it has one.
        impressions: pages printed, as the agent's CUPS counted them (completed).
        message: CUPS' reason for a failure, or its latest message.
    """

    claim: str
    state: str
    cups_job_id: int | None = None
    impressions: int | None = None
    message: str = ""


def _whole(value: object, field: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**31:
        raise InvalidInput(f"Field '{field}' must be a whole number", reason=field)
    return value


def parse_report(document: object, *, batched: bool = False) -> Report:
    """A report from its JSON body (in a batch, with its "job" too); InvalidInput naming
    the bad field."""
    if not isinstance(document, dict):
        raise InvalidInput("The body must be a JSON object", reason="body")
    allowed = {"claim", "state", "cups_job_id", "impressions", "message"}
    if batched:
        allowed.add("job")
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise InvalidInput(f"Field {unknown[0]!r} is not known", reason=unknown[0])
    claim = document.get("claim")
    if not isinstance(claim, str) or not claim or len(claim) > 64:
        raise InvalidInput("Field 'claim' must be the claim token of the job", reason="claim")
    state = document.get("state")
    if state not in REPORT_STATES:
        raise InvalidInput(
            f"Field 'state' must be one of: {', '.join(REPORT_STATES)}", reason="state"
        )
    message = document.get("message", "")
    if not isinstance(message, str):
        raise InvalidInput("Field 'message' must be a string", reason="message")
    return Report(
        claim=claim,
        state=state,
        cups_job_id=_whole(document.get("cups_job_id"), "cups_job_id"),
        impressions=_whole(document.get("impressions"), "impressions"),
        message=message[:2000],
    )


def parse_reports(document: object, *, limit: int) -> list[tuple[int, Report]]:
    """A batch of reports, ``{"reports": [{"job": ID, "claim": ..., "state": ...}, ...]}``:
    (job id, report) pairs in order. InvalidInput (nothing applied) when any is malformed or
    one job is named twice."""
    if not isinstance(document, dict) or set(document) != {"reports"}:
        raise InvalidInput('The body must be {"reports": [...]}', reason="body")
    items = document["reports"]
    if not isinstance(items, list) or not 1 <= len(items) <= limit:
        raise InvalidInput(f"Field 'reports' must list 1 to {limit} reports", reason="reports")
    parsed = []
    for item in items:
        report = parse_report(item, batched=True)
        job_id = _whole(item.get("job"), "job")
        if job_id is None:
            raise InvalidInput("Each report needs the 'job' it is about", reason="job")
        parsed.append((job_id, report))
    if len({job_id for job_id, _ in parsed}) != len(parsed):
        raise InvalidInput("A job is reported twice in one batch", reason="job")
    return parsed


def _requeue_or_fail(
    session: Session, job: PrintJob, state: str, message: str, *, max_attempts: int
) -> str:
    """A failed or lost attempt: fetchable again while attempts are left, else final."""
    if job.attempts < max_attempts:
        session.execute(
            update(PrintJob)
            .where(PrintJob.id == job.id, PrintJob.lease_owner == job.lease_owner)
            .values(
                state="queued",
                lease_owner=None,
                lease_until=None,
                cups_job_id=None,
                cups_state="",
                message=f"attempt {job.attempts} of {max_attempts}: {message}"[:2000],
            )
            .execution_options(synchronize_session=False)
        )
        return "queued"
    final = "aborted" if state == "aborted" else "failed"
    why = (
        f"{message} (after {job.attempts} attempt(s))"
        if message
        else f"{job.attempts} attempt(s) failed"
    )
    finish_job(session, job.id, final, why, cups_state=state if state != "released" else None)
    return final


def record_report(
    session: Session, agent: Agent, job_id: int, report: Report, *, max_attempts: int
) -> str:
    """Apply an agent's report; return the job's state afterwards."""
    job = _held(session, agent, job_id, report.claim)
    if report.state == "processing":
        if report.cups_job_id is None:
            raise InvalidInput("A 'processing' report needs 'cups_job_id'", reason="cups_job_id")
        job.state = "submitted"
        job.cups_job_id = report.cups_job_id
        job.cups_state = "processing"
        job.submitted_at = job.submitted_at or utcnow()
        job.message = report.message
        session.flush()
        return "submitted"
    if report.state == "completed":
        finish_job(session, job.id, "completed", "", cups_state="completed")
        session.execute(
            update(PrintJob)
            .where(PrintJob.id == job.id)
            .values(
                impressions=report.impressions, cups_job_id=report.cups_job_id or job.cups_job_id
            )
            .execution_options(synchronize_session=False)
        )
        return "completed"
    if report.state == "canceled":
        finish_job(session, job.id, "canceled", report.message or "canceled", cups_state="canceled")
        return "canceled"
    return _requeue_or_fail(
        session,
        job,
        report.state,
        report.message or report.state,
        max_attempts=max_attempts,
    )


def cancel_remote_job(session: Session, job_id: int, *, reason: str) -> str | None:
    """Cancel a remote job from the centre and refund it (once: ``finish_job``); return the
    name of the agent that holds it (its claim is void now: its next renewal or report is
    refused, and it cancels the job on its CUPS), or None when no agent holds it yet.

    NotFound when there is no such remote job; Conflict when it has ended already.
    """
    job = session.scalar(
        select(PrintJob)
        .where(PrintJob.id == job_id, PrintJob.agent_id.is_not(None))
        .with_for_update()
    )
    if job is None:
        raise NotFound(f"There is no remote print job {job_id}")
    if job.state not in OPEN_STATES:
        raise Conflict(f"Job {job_id} has ended ({job.state})", reason="ended")
    held = job.lease_owner is not None or job.state == "submitted"
    agent = session.get(Agent, job.agent_id)
    if not finish_job(session, job.id, "canceled", reason, cups_state=None):
        raise Conflict(f"Job {job_id} has ended", reason="ended")
    return agent.name if held and agent is not None else None


def lapsed_jobs(session: Session, *, max_attempts: int, now: datetime) -> list[int]:
    """The remote jobs whose last claim lapsed with no attempt left (a read)."""
    return list(
        session.scalars(
            select(PrintJob.id).where(
                PrintJob.agent_id.is_not(None),
                PrintJob.state == "queued",
                PrintJob.lease_until < now,
                PrintJob.attempts >= max_attempts,
            )
        )
    )


def expire_lapsed(session: Session, *, max_attempts: int, now: datetime) -> int:
    """Fail (and refund) the remote jobs whose last claim lapsed with no attempt left;
    return how many. Jobs whose agent's CUPS has them are left to that agent."""
    lapsed = lapsed_jobs(session, max_attempts=max_attempts, now=now)
    failed = 0
    for job_id in lapsed:
        # Taken first with the same condition, so a renewal that just came in wins.
        taken = session.execute(
            update(PrintJob)
            .where(PrintJob.id == job_id, PrintJob.state == "queued", PrintJob.lease_until < now)
            .values(lease_owner="expired")
            .execution_options(synchronize_session=False)
        )
        if not taken.rowcount:
            continue
        failed += finish_job(
            session,
            job_id,
            "failed",
            f"no print agent printed it in {max_attempts} attempt(s)",
        )
    return failed

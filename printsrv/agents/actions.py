"""What the agent REST API awaits: one unit of work per call, the caller checked inside it.

Every call first authenticates the agent by name and token (`registry.authenticate_agent`,
which also records the contact) in the same transaction as its work, so a removed agent is
refused by the very transaction that would have served it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from printsrv.agents import dispatch, registry, wakeups
from printsrv.agents.dispatch import ClaimedJob
from printsrv.agents.models import Agent
from printsrv.agents.printers import parse_printers, register_printers
from printsrv.documents.store import PdfStore
from printsrv.errors import Conflict, InvalidInput, NotFound, PrintsrvError
from printsrv.operations.installation import Installation
from printsrv.platform.models import utcnow

__all__ = [
    "MAX_BATCH",
    "MAX_BATCH_REPORTS",
    "MAX_INLINE",
    "MAX_INLINE_TOTAL",
    "Caller",
    "Outcome",
    "inline_pdfs",
    "next_job",
    "open_pdf",
    "register",
    "renew",
    "report",
    "report_many",
]

MAX_BATCH = 16  # jobs one poll may claim (each with its own lease and claim)
MAX_BATCH_REPORTS = 64  # reports in one request
MAX_INLINE = 1024 * 1024  # largest PDF sent with its claim (GET /agent/jobs/next?inline=)
MAX_INLINE_TOTAL = 4 * 1024 * 1024  # ... and all of a poll's together


@dataclass(frozen=True)
class Caller:
    """Who says they are calling: an agent's name and token, and the address they call from."""

    name: str
    token: str
    address: str

    def __repr__(self) -> str:
        return f"Caller({self.name!r}, token=[secure], address={self.address!r})"


def _settings(installation: Installation) -> tuple[int, int, int]:
    snapshot = installation.config.snapshot()
    return (
        snapshot["agents.poll-secs"],
        snapshot["agents.lease-secs"],
        snapshot["agents.max-attempts"],
    )


def _authenticate(installation: Installation, session: Any, caller: Caller) -> Agent:
    return registry.authenticate_agent(
        session, caller.name, caller.token, hasher=installation.hasher, address=caller.address
    )


async def register(installation: Installation, caller: Caller, document: object) -> list[str]:
    """Replace the caller's printers with the ones in ``document`` (``{"printers": [...]}``);
    return their central names. InvalidInput names a bad field; nothing is written then."""
    printers = parse_printers(document)

    def work() -> list[str]:
        with installation.db.transaction() as session:
            agent = _authenticate(installation, session, caller)
            return register_printers(session, agent, printers)

    return await installation.db.run(work)


async def next_job(
    installation: Installation, caller: Caller, wait_secs: float, max_jobs: int = 1
) -> list[ClaimedJob]:
    """The long-poll: claim up to ``max_jobs`` of the caller's next jobs, waiting up to
    ``wait_secs`` (at most ``agents.poll-secs``) for the first to arrive; [] when none did.

    A job committed on any machine wakes the wait at once (``wakeups``); without a wake-up
    the database is asked again every ``wakeups.fallback_secs``.
    """
    poll_secs, lease_secs, max_attempts = _settings(installation)
    db = installation.db
    deadline = time.monotonic() + max(0.0, min(wait_secs, float(poll_secs)))
    limit = max(1, min(max_jobs, MAX_BATCH))

    def claim(session: Any, agent: Agent, now: datetime) -> list[ClaimedJob]:
        return dispatch.claim_batch(
            session, agent, limit=limit, lease_secs=lease_secs, max_attempts=max_attempts, now=now
        )

    def first() -> tuple[Agent, list[ClaimedJob]]:
        with db.transaction() as session:
            agent = _authenticate(installation, session, caller)
            return agent, claim(session, agent, utcnow())

    def again(agent: Agent) -> list[ClaimedJob]:
        now = utcnow()
        with db.read() as session:
            if not dispatch.has_claimable(session, agent.id, max_attempts=max_attempts, now=now):
                return []
        with db.transaction() as session:
            return claim(session, agent, now)

    # Authenticated first, outside the wait: an unknown caller never waits.
    agent, claimed = await db.run(first)
    if claimed:
        return claimed
    with wakeups.waiting(agent.id) as woken:
        # Registered before looking again, so a job committed in between is not missed.
        claimed = await db.run(again, agent)
        while not claimed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    woken.wait(), min(remaining, wakeups.fallback_secs(installation.notifications))
                )
            woken.clear()
            claimed = await db.run(again, agent)
    return claimed


def inline_pdfs(
    installation: Installation, claimed: list[ClaimedJob], most_bytes: int
) -> dict[int, bytes]:
    """The PDFs of just-claimed jobs that are at most ``most_bytes`` each (and together at
    most MAX_INLINE_TOTAL), by job id, to send with the claims: a small job then costs the
    agent no download request. A PDF missing from the store is left out (its download
    says why). Blocking: call it in a work thread."""
    store = PdfStore(installation.env.home)
    found: dict[int, bytes] = {}
    total = 0
    for job in claimed:
        path = store.path_for(job.pdf_sha256)
        try:
            size = path.stat().st_size
            if size > most_bytes or total + size > MAX_INLINE_TOTAL:
                continue
            found[job.job_id] = path.read_bytes()
        except OSError:
            continue
        total += size
    return found


async def open_pdf(installation: Installation, caller: Caller, job_id: int, claim: str) -> Path:
    """The stored PDF of a job the caller holds. NotFound (not the caller's job), Conflict
    (claim lost, job ended, PDF no longer kept)."""

    def work() -> str:
        with installation.db.transaction() as session:
            agent = _authenticate(installation, session, caller)
            digest, _title = dispatch.job_pdf(session, agent, job_id, claim)
            return digest

    digest = await installation.db.run(work)
    path = PdfStore(installation.env.home).path_for(digest)
    if not path.is_file():
        raise Conflict(f"The PDF of job {job_id} is missing from the store", reason="pdf")
    return path


async def renew(installation: Installation, caller: Caller, job_id: int, claim: str) -> datetime:
    """Extend the caller's lease on a job by ``agents.lease-secs``; return its new end."""
    _poll, lease_secs, _max = _settings(installation)

    def work() -> datetime:
        with installation.db.transaction() as session:
            agent = _authenticate(installation, session, caller)
            return dispatch.renew_claim(
                session, agent, job_id, claim, lease_secs=lease_secs, now=utcnow()
            )

    return await installation.db.run(work)


async def report(installation: Installation, caller: Caller, job_id: int, document: object) -> str:
    """Apply the caller's report on a job (``dispatch.parse_report``); return the job's state."""
    parsed = dispatch.parse_report(document)
    _poll, _lease, max_attempts = _settings(installation)

    def work() -> str:
        with installation.db.transaction() as session:
            agent = _authenticate(installation, session, caller)
            return dispatch.record_report(session, agent, job_id, parsed, max_attempts=max_attempts)

    return await installation.db.run(work)


@dataclass(frozen=True)
class Outcome:
    """What became of one report of a batch: the job's state, or why it was refused.

    Attributes:
        job_id: the job the report was about.
        state: the job's state afterwards ("" when refused).
        error: the refusal the same report alone would have had (NotFound: not the caller's
            job; Conflict: the claim lapsed or the job ended; InvalidInput), or None.
    """

    job_id: int
    state: str = ""
    error: PrintsrvError | None = None


async def report_many(
    installation: Installation, caller: Caller, document: object
) -> list[Outcome]:
    """Apply a batch of the caller's reports (``{"reports": [{"job": ID, "claim": ...,
    "state": ...}, ...]}``), each as if sent alone: one report's refusal (a job no longer
    the caller's, a claim that lapsed) leaves the others applied. One authentication, one
    transaction, a savepoint per report."""
    items = dispatch.parse_reports(document, limit=MAX_BATCH_REPORTS)
    _poll, _lease, max_attempts = _settings(installation)

    def work() -> list[Outcome]:
        outcomes = []
        with installation.db.transaction() as session:
            agent = _authenticate(installation, session, caller)
            for job_id, parsed in items:
                try:
                    with session.begin_nested():
                        state = dispatch.record_report(
                            session, agent, job_id, parsed, max_attempts=max_attempts
                        )
                except (NotFound, Conflict, InvalidInput) as refused:
                    outcomes.append(Outcome(job_id, error=refused))
                else:
                    outcomes.append(Outcome(job_id, state=state))
        return outcomes

    return await installation.db.run(work)

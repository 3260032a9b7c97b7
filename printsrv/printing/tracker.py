"""The background tracker: follows print jobs until CUPS says they are final, and keeps house.

Every server process runs one (started in the app's lifespan). All its state is in the
database, so a tracker that stops, crashes or restarts loses nothing: a job is claimed with
a lease (a conditional UPDATE that only one tracker wins), looked at, and released; a lease
that runs out because its tracker died lets another one take over. Finishing a job and
refunding it is exactly-once on its own (``jobs.finish_job``), so the lease only saves work.

Besides jobs, the tracker synchronises printers from CUPS at start and every few minutes,
and applies ``print.retention-days`` and the orphan sweep now and then.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import case, func, or_, select, update

from printsrv.documents.log import run_retention, sweep_orphans
from printsrv.operations.installation import Installation
from printsrv.platform.models import utcnow
from printsrv.platform.notifications import Listener, Topic, wait_for_change
from printsrv.platform.threads import in_thread
from printsrv.printing.context import PrintContext
from printsrv.printing.errors import PrintingError
from printsrv.printing.jobs import (
    OPEN_STATES,
    JobOutcome,
    look_at_job,
    record_verdicts,
)
from printsrv.printing.models import PrintJob
from printsrv.printing.printers import sync_printers

log = logging.getLogger(__name__)

__all__ = ["Tracker", "run_tracker", "sync_from_cups"]

INTERVAL: Final = 0.1
IDLE_INTERVAL: Final = 0.25
# While the notification listener hears every new print job, an idle tracker sleeps until
# the next open job is due, or this long at most (another machine's tracker may have died
# holding a lease).
HEARD_POLL_INTERVAL: Final = 5.0
LEASE: Final = timedelta(seconds=30)
BATCH: Final = 50
PRINTER_SYNC_EVERY: Final = 300.0
HOUSEKEEPING_EVERY: Final = 3600.0


@dataclass(frozen=True)
class _Claimed:
    id: int
    state: str
    cups_job_id: int | None
    submitted_at: datetime | None


async def sync_from_cups(context: PrintContext) -> int:
    """Read every printer from the CUPS server into the database; return how many there are."""
    listed_at = utcnow()
    printers = await context.call_cups(context.cups.list_printers())

    def store() -> None:
        with context.installation.db.transaction() as session:
            sync_printers(session, printers, listed_at=listed_at)

    await in_thread(store)
    return len(printers)


class Tracker:
    """Follows the open print jobs of one installation.

    ``owner`` names this tracker in the leases it takes (host, pid and a random part, so two
    trackers in one process differ). ``step()`` does one round and is what tests drive.
    """

    def __init__(self, installation: Installation, *, owner: str | None = None) -> None:
        self.installation = installation
        self.owner = owner or f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def __repr__(self) -> str:
        return f"Tracker({self.owner!r})"

    def _claim(self, now: datetime) -> list[_Claimed]:
        """Lease up to BATCH due jobs to this tracker; return the ones it won."""
        due = (
            PrintJob.state.in_(OPEN_STATES),
            # Remote jobs are their agent's to follow (printsrv.agents), not CUPS' here.
            PrintJob.agent_id.is_(None),
            PrintJob.next_poll_at <= now,
            or_(PrintJob.lease_until.is_(None), PrintJob.lease_until < now),
        )
        db = self.installation.db
        with db.read() as session:
            candidates = list(
                session.execute(
                    select(PrintJob.id).where(*due).order_by(PrintJob.next_poll_at).limit(BATCH)
                ).scalars()
            )
        if not candidates:
            return []
        with db.transaction() as session:
            rows = session.execute(
                update(PrintJob)
                .where(PrintJob.id.in_(candidates), *due)
                .values(lease_owner=self.owner, lease_until=now + LEASE)
                .returning(PrintJob.id, PrintJob.state, PrintJob.cups_job_id, PrintJob.submitted_at)
                .execution_options(synchronize_session=False)
            ).all()
        return sorted((_Claimed(*row) for row in rows), key=lambda c: c.id)

    def seconds_until_due(self, now: datetime) -> float:
        """How long until the earliest open job is due (or its lease runs out), at most
        HEARD_POLL_INTERVAL."""
        due_at = case(
            (PrintJob.lease_until > PrintJob.next_poll_at, PrintJob.lease_until),
            else_=PrintJob.next_poll_at,
        )
        with self.installation.db.read() as session:
            earliest = session.scalar(
                select(func.min(due_at)).where(PrintJob.state.in_(OPEN_STATES))
            )
        if earliest is None:
            return HEARD_POLL_INTERVAL
        return min(HEARD_POLL_INTERVAL, max(INTERVAL, (earliest - now).total_seconds()))

    async def step(self) -> list[JobOutcome]:
        """One round: claim the due jobs and look at each; return what became of them."""
        context = PrintContext.of(self.installation)
        claimed = await in_thread(self._claim, utcnow())
        if not claimed:
            return []
        # The looks run side by side (CUPS calls use the client's thread pool); what they
        # decided is written in one go.
        verdicts = list(
            await asyncio.gather(
                *(
                    look_at_job(
                        context,
                        job_id=job.id,
                        state=job.state,
                        cups_job_id=job.cups_job_id,
                        submitted_at=job.submitted_at,
                    )
                    for job in claimed
                )
            )
        )
        await in_thread(record_verdicts, self.installation.db, verdicts, self.owner)
        return [verdict.outcome() for verdict in verdicts]

    async def housekeeping(self) -> None:
        """Retention of stored PDFs and the sweep of orphaned files."""
        context = PrintContext.of(self.installation)
        db, store = self.installation.db, context.store
        await in_thread(run_retention, db, store, days=context.retention_days)
        await in_thread(sweep_orphans, db, store)

    async def run(self) -> None:
        """Track jobs until cancelled; errors are logged and the loop goes on."""
        loop = asyncio.get_running_loop()
        next_sync = loop.time()
        next_housekeeping = loop.time() + 5.0
        failing = False
        listener = self.installation.notifications
        wake, unsubscribe = (
            listener.wake_on((Topic.PRINT_JOBS,)) if listener.possible else (None, None)
        )
        try:
            await self._run(loop, next_sync, next_housekeeping, failing, listener, wake)
        finally:
            if unsubscribe is not None:
                unsubscribe()

    async def _run(
        self,
        loop: asyncio.AbstractEventLoop,
        next_sync: float,
        next_housekeeping: float,
        failing: bool,
        listener: Listener,
        wake: asyncio.Event | None,
    ) -> None:
        while True:
            busy = False
            pause = IDLE_INTERVAL
            if wake is not None:
                wake.clear()  # before looking: a job announced meanwhile wakes us again
            try:
                if loop.time() >= next_sync:
                    next_sync = loop.time() + PRINTER_SYNC_EVERY
                    await self._sync_printers()
                if loop.time() >= next_housekeeping:
                    next_housekeeping = loop.time() + HOUSEKEEPING_EVERY
                    await self.housekeeping()
                busy = bool(await self.step())
                if not busy and listener.listening:
                    pause = await in_thread(self.seconds_until_due, utcnow())
                if failing:
                    log.warning("print job tracker working again")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception:
                # The tracker must outlive any one failure (database down, a bad row ...).
                if not failing:
                    log.exception("print job tracker round failed; retrying")
                failing = True
            if busy:
                await asyncio.sleep(INTERVAL)
            else:
                await wait_for_change(wake, listener, IDLE_INTERVAL, pause, failing)

    async def _sync_printers(self) -> None:
        try:
            count = await sync_from_cups(PrintContext.of(self.installation))
            log.info("synchronised %d printer(s) from CUPS", count)
        except PrintingError as exc:
            log.warning("could not read the printers from CUPS: %s", exc)


async def run_tracker(installation: Installation) -> None:
    """Run a tracker for ``installation`` until cancelled (the app's lifespan starts this)."""
    await Tracker(installation).run()

"""The system's status as monitoring sees it, and the batch jobs that affect it.

`systemStatus` is polled every few seconds from many places, so the status is computed
from in-memory state only: the config snapshot (maintenance flag, admin credentials) and
a `SystemMonitor` that a background task keeps in step with the database (running batch
jobs, whether the schema is current). `keep_users_out_in_maintenance` is the rule that
makes maintenance keep users out.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

from alembic.script import ScriptDirectory
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from printsrv.errors import UnderMaintenance
from printsrv.operations.models import BatchJob
from printsrv.platform.database import Database
from printsrv.platform.models import utcnow
from printsrv.platform.notifications import Listener, Topic, announce, wait_for_change
from printsrv.platform.properties import Snapshot
from printsrv.platform.threads import in_thread

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 5.0
# A job whose heartbeat is older than this died without cleaning up; it no longer counts.
HEARTBEAT_EXPIRY = timedelta(seconds=30)
REFRESH_INTERVAL = 0.5
HEARD_POLL_INTERVAL = 10.0  # while every change is heard, read anyway this often


class SystemStatus(enum.StrEnum):
    """What `systemStatus` answers; the first that holds wins, in this order of importance."""

    SETUP = "SETUP"
    MAINTENANCE = "MAINTENANCE"
    UNAVAILABLE = "UNAVAILABLE"
    READY = "READY"


MAINTENANCE_MESSAGE = (
    "printsrv is under maintenance: users are kept out until it ends. Please try again later."
)


def keep_users_out_in_maintenance(snapshot: Snapshot) -> None:
    """Raise UnderMaintenance while `system.maintenance` is on: the one maintenance rule.

    Every user-facing entry (REST user services, the web app, XML-RPC createToken) calls
    this before it reads credentials or touches anything, so a refused request changes
    nothing. Admin services, JSON-RPC and /metrics do not: the admin works during
    maintenance. The flag comes from the config snapshot, which every server re-reads
    from the shared database within `config.REFRESH_INTERVAL`.
    """
    if snapshot["system.maintenance"]:
        raise UnderMaintenance(MAINTENANCE_MESSAGE, reason="system.maintenance")


def running_jobs(session: Session) -> list[tuple[str, datetime]]:
    """(kind, last heartbeat) of every batch job that has registered itself and not ended."""
    return [(row.kind, row.heartbeat_at) for row in session.scalars(select(BatchJob))]


@contextlib.contextmanager
def batch_job(db: Database, kind: str, *, heartbeat: float = HEARTBEAT_INTERVAL) -> Iterator[int]:
    """Register a batch job for as long as the block runs, so every server reports UNAVAILABLE.

    The registration is committed at once (other processes must see it), refreshed by a
    heartbeat thread, and removed when the block ends, however it ends.
    """
    with db.transaction() as session:
        row = BatchJob(kind=kind, host=socket.gethostname(), pid=os.getpid())
        session.add(row)
        session.flush()
        job_id = row.id
        announce(session, Topic.STATUS)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(heartbeat):
            try:
                with db.transaction() as session:
                    session.execute(
                        update(BatchJob).where(BatchJob.id == job_id).values(heartbeat_at=utcnow())
                    )
            except Exception:
                log.warning("batch job %s (%s): heartbeat failed", job_id, kind, exc_info=True)

    thread = threading.Thread(target=beat, name=f"batch-job-{kind}", daemon=True)
    thread.start()
    try:
        yield job_id
    finally:
        stop.set()
        thread.join()
        with db.transaction() as session:
            session.execute(delete(BatchJob).where(BatchJob.id == job_id))
            announce(session, Topic.STATUS)


class SystemMonitor:
    """Keeps what `systemStatus` needs from the database in memory."""

    def __init__(self, db: Database, listener: Listener | None = None) -> None:
        self._db = db
        self._listener = listener
        self._jobs: list[tuple[str, datetime]] = []
        self._schema_current = False
        self._checked = False
        self._checked_at = 0.0
        self.background = False
        self._heads: set[str] | None = None

    def refresh(self) -> None:
        """Read running batch jobs and whether the schema is at the newest migration."""
        if self._heads is None:
            # The migration scripts of a running process never change; read them once.
            from printsrv.migrations import alembic_config

            self._heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
        heads = self._heads
        with self._db.read() as session:
            # One plain query; alembic's MigrationContext costs milliseconds of Python.
            try:
                current = set(session.scalars(text("SELECT version_num FROM alembic_version")))
            except ProgrammingError:
                current = set()  # a database that was never migrated
            self._jobs = running_jobs(session) if current == heads else []
        self._schema_current = current == heads
        self._checked = True
        self._checked_at = time.monotonic()

    def _ensure_fresh(self) -> None:
        if not self._checked or (
            not self.background and time.monotonic() - self._checked_at > REFRESH_INTERVAL
        ):
            self.refresh()

    def running_job_kinds(self) -> list[str]:
        """Kinds of the batch jobs running now (heartbeat recent enough)."""
        self._ensure_fresh()
        if not self._jobs:  # the usual case, and the clock is not free
            return []
        cutoff = utcnow() - HEARTBEAT_EXPIRY
        return [kind for kind, heartbeat in self._jobs if heartbeat >= cutoff]

    def status(self, snapshot: Snapshot) -> SystemStatus:
        """The single most important status, in the order SETUP, MAINTENANCE, UNAVAILABLE."""
        self._ensure_fresh()
        if not self._schema_current or not snapshot["api.restful.auth.password"].is_set:
            return SystemStatus.SETUP
        if snapshot["system.maintenance"]:
            return SystemStatus.MAINTENANCE
        if self.running_job_kinds():
            return SystemStatus.UNAVAILABLE
        return SystemStatus.READY

    async def keep_fresh(self, interval: float = REFRESH_INTERVAL) -> None:
        """Refresh until cancelled (run from the app's lifespan): on each change heard (a
        batch job began or ended, the schema was upgraded), and every `interval` seconds
        while a batch job runs (its heartbeats are not announced) or nothing is heard."""
        self.background = True
        listener = self._listener
        wake, unsubscribe = (
            listener.wake_on((Topic.STATUS,)) if listener and listener.possible else (None, None)
        )
        try:
            while True:
                failing = False
                if wake is not None:
                    wake.clear()  # before reading: a change during the read wakes us again
                try:
                    await in_thread(self.refresh)
                except Exception:
                    failing = True
                    log.debug("system monitor refresh failed", exc_info=True)
                await wait_for_change(
                    wake, listener, interval, HEARD_POLL_INTERVAL, failing or bool(self._jobs)
                )
        finally:
            self.background = False
            if unsubscribe is not None:
                unsubscribe()

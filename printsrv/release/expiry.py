"""Held documents that nobody released within ``release.hold-hours`` are removed.

A held document is charged only when it is released, so removing it costs its owner
nothing; a document a print rule holds for approval is not swept (it waits for its
approver's decision); the log entry stays (``store`` false, as retention leaves it) and the PDF goes
once no kept entry names it. Every server runs ``keep_swept``; the removal is one
conditional UPDATE, so when machines sweep at the same moment each document is claimed by
exactly one of them, and only the winner deletes files.

The sweep waits ``GRACE`` past the deadline: a release that passed its expiry check a
moment before the deadline still finds its PDF when it prints.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select, update

from printsrv.documents.models import Document
from printsrv.documents.store import PdfStore
from printsrv.errors import DatabaseUnavailable
from printsrv.operations.installation import Installation
from printsrv.platform.database import Database
from printsrv.platform.models import utcnow
from printsrv.platform.threads import in_thread
from printsrv.release import guessing, station_sessions
from printsrv.release.held import released_sources, waiting_for_approval

log = logging.getLogger(__name__)

__all__ = ["GRACE", "SWEEP_EVERY", "keep_swept", "remove_expired_held", "sweep"]

GRACE: Final = timedelta(minutes=5)
SWEEP_EVERY: Final = 300.0


def remove_expired_held(
    db: Database, store: PdfStore, *, hold_hours: int, now: datetime | None = None
) -> int:
    """Remove held documents older than ``hold_hours`` (and GRACE) that were never released;
    return how many this call removed. Files go after the commit, and only those no kept
    entry names."""
    cutoff = (now or utcnow()) - timedelta(hours=hold_hours) - GRACE
    with db.transaction() as session:
        claimed = session.execute(
            update(Document)
            .where(
                Document.doc_type == "in",
                Document.store.is_(True),
                Document.created_at < cutoff,
                Document.id.not_in(released_sources()),
                # Held for approval is not held for release: it waits for the approver.
                Document.id.not_in(waiting_for_approval()),
            )
            .values(store=False)
            .returning(Document.id, Document.pdf_sha256)
            .execution_options(synchronize_session=False)
        ).all()
        if not claimed:
            return 0
        digests = {digest for _, digest in claimed}
        still_kept = set(
            session.scalars(
                select(Document.pdf_sha256).where(
                    Document.store.is_(True), Document.pdf_sha256.in_(digests)
                )
            )
        )
    for digest in digests - still_kept:
        # A file written after the cutoff belongs to an upload that is not committed yet.
        store.remove(digest, unless_newer_than=cutoff)
    log.info("release: %d held document(s) expired unreleased and removed", len(claimed))
    return len(claimed)


def sweep(installation: Installation, now: datetime | None = None) -> int:
    """One round: expired held documents, ended station sessions, stale guessing counters.
    Returns how many documents were removed."""
    current = now or utcnow()
    removed = remove_expired_held(
        installation.db,
        PdfStore(installation.env.home),
        hold_hours=installation.config.snapshot()["release.hold-hours"],
        now=current,
    )
    with installation.db.transaction() as session:
        station_sessions.purge_expired(session, current)
        guessing.purge_stale(session, current)
    return removed


async def keep_swept(installation: Installation, interval: float = SWEEP_EVERY) -> None:
    """Sweep every ``interval`` seconds until cancelled (the app's lifespan starts this).

    A failed round (the database away) is tried again next time.
    """
    failing = False
    while True:
        try:
            await in_thread(sweep, installation)
            failing = False
        except DatabaseUnavailable:
            failing = True  # the config refresher already says so in the log
        except Exception:
            # The loop must outlive any one failure, or held documents would pile up.
            if not failing:
                log.exception("sweeping expired held documents failed; retrying")
            failing = True
        await asyncio.sleep(interval)

"""The agents' background work in every server process (started in the app's lifespan):
the PostgreSQL wake-up listener, and failing (and refunding) remote jobs whose attempts ran
out. Expiring is exactly-once on its own (a conditional UPDATE, then `finish_job`), so any
number of servers may sweep at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from printsrv.agents import dispatch
from printsrv.agents.wakeups import Listener
from printsrv.operations.installation import Installation
from printsrv.platform.models import utcnow

log = logging.getLogger(__name__)

__all__ = ["run_agent_service", "sweep_once"]

SWEEP_EVERY: Final = 1.0


def sweep_once(installation: Installation) -> int:
    """Fail and refund the remote jobs whose last attempt lapsed; return how many."""
    max_attempts = installation.config.snapshot()["agents.max-attempts"]
    now = utcnow()
    # A read first: most sweeps find nothing, and must not take SQLite's write lock.
    with installation.db.read() as session:
        if not dispatch.lapsed_jobs(session, max_attempts=max_attempts, now=now):
            return 0
    with installation.db.transaction() as session:
        return dispatch.expire_lapsed(session, max_attempts=max_attempts, now=now)


async def _sweep_forever(installation: Installation) -> None:
    failing = False
    while True:
        try:
            failed = await installation.db.run(sweep_once, installation)
            if failed:
                log.info("%d remote job(s) failed after their last attempt lapsed", failed)
            failing = False
        except asyncio.CancelledError:
            raise
        except Exception:
            # The sweep must outlive any one failure (a database restart ...).
            if not failing:
                log.exception("remote job sweep failed; retrying")
            failing = True
        await asyncio.sleep(SWEEP_EVERY)


async def run_agent_service(installation: Installation) -> None:
    """Listen for wake-ups and sweep lapsed jobs until cancelled."""
    await asyncio.gather(Listener(installation.db.url).run(), _sweep_forever(installation))

"""The agents' background work in every server process (started in the app's lifespan):
waking long-polls on the notification listener, and failing (and refunding) remote jobs
whose attempts ran out. Expiring is exactly-once on its own (a conditional UPDATE, then
`finish_job`), so any number of servers may sweep at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from printsrv.agents import dispatch
from printsrv.agents.wakeups import listen
from printsrv.operations.installation import Installation
from printsrv.platform.models import utcnow

log = logging.getLogger(__name__)

__all__ = ["run_agent_service", "sweep_once"]

# A lapsed job is noticed within a quarter of its lease (the lease is minutes by default:
# sweeping every second cost an idle server a database read a second), at most this long.
SWEEP_EVERY: Final = 5.0


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
        lease_secs = installation.config.snapshot()["agents.lease-secs"]
        await asyncio.sleep(min(SWEEP_EVERY, lease_secs / 4))


async def run_agent_service(installation: Installation) -> None:
    """Wake long-polls and sweep lapsed jobs until cancelled."""
    stop_listening = listen(installation.notifications)
    try:
        await _sweep_forever(installation)
    finally:
        stop_listening()

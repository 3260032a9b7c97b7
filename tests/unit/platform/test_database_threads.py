"""Database.run: blocking database work in the database's own threads (platform/database.py)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest
from sqlalchemy import text
from support import Overlap

from printsrv.operations.installation import Installation
from printsrv.platform.database import POOL_SIZE

CALLER = contextvars.ContextVar("caller", default="none")


def test_work_runs_in_a_database_thread_with_the_callers_context(
    installation: Installation,
) -> None:
    def work(value: int) -> tuple[str, str, int]:
        with installation.db.read() as session:
            answer = session.scalar(text("SELECT :v"), {"v": value})
        return threading.current_thread().name, CALLER.get(), answer

    async def main() -> tuple[str, str, int]:
        CALLER.set("request-42")  # as a request id would be
        return await installation.db.run(work, 7)

    name, caller, answer = asyncio.run(main())
    assert name.startswith("printsrv-db") and name != threading.current_thread().name
    assert (caller, answer) == ("request-42", 7)


def test_errors_reach_the_caller(installation: Installation) -> None:
    def fails() -> None:
        raise LookupError("no such thing")

    with pytest.raises(LookupError, match="no such thing"):
        asyncio.run(installation.db.run(fails))


def test_no_more_work_runs_at_once_than_the_pool_has_connections(
    installation: Installation,
) -> None:
    overlap = Overlap()

    def work() -> None:
        with overlap.during():
            time.sleep(0.02)

    async def main() -> None:
        await asyncio.gather(*(installation.db.run(work) for _ in range(POOL_SIZE * 3)))

    asyncio.run(main())
    assert overlap.peak == POOL_SIZE


def test_a_cancelled_call_still_waits_for_its_thread(installation: Installation) -> None:
    finished = threading.Event()

    def slow() -> None:
        time.sleep(0.2)
        finished.set()

    async def main() -> None:
        call = asyncio.ensure_future(installation.db.run(slow))
        await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # Only now is the caller told: the work was not cut off under it.
        assert finished.is_set()

    asyncio.run(main())


def test_the_database_works_again_after_dispose(installation: Installation) -> None:
    def work() -> int:
        with installation.db.read() as session:
            return int(session.scalar(text("SELECT 1")) or 0)

    assert asyncio.run(installation.db.run(work)) == 1
    installation.db.dispose()
    assert asyncio.run(installation.db.run(work)) == 1

"""What the adapters call: start a job, poll it, wait for it, read a result file.

Each function owns its unit of work (the transaction, the hop off the event loop), so an
adapter's whole business logic is one `await`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from printsrv.jobs import service
from printsrv.jobs.service import JobView, Owner, StoredFile
from printsrv.jobs.types import check_caller, job_type
from printsrv.operations.installation import Installation
from printsrv.platform.threads import iterate_in_thread

__all__ = ["open_result", "poll_job", "start_job", "wait_job"]

WAIT_INTERVAL = 0.1


async def start_job(
    installation: Installation, *, type_name: Any, argument: Any, owner: Owner
) -> JobView:
    """Check the request (type, caller, argument: InvalidInput naming the field, NotAllowed,
    NotFound) and queue the job; nothing is written for a refused one."""
    kind = job_type(type_name)
    check_caller(kind, owner)

    def queue() -> JobView:
        with installation.db.transaction() as session:
            checked = kind.check(session, installation, argument, owner)
            return service.create_job(session, job_type=kind.name, argument=checked, owner=owner)

    return await installation.db.run(queue)


async def poll_job(installation: Installation, key: Any, owner: Owner) -> JobView:
    """Where the job stands (JobKeyNotFound for a missing key and someone else's alike)."""

    def read() -> JobView:
        with installation.db.read() as session:
            return service.read_job(session, key, owner)

    return await installation.db.run(read)


async def wait_job(
    installation: Installation, key: str, owner: Owner, *, interval: float = WAIT_INTERVAL
) -> JobView:
    """Poll until the job has ended, whichever server runs it."""
    while True:
        view = await poll_job(installation, key, owner)
        if view.end:
            return view
        await asyncio.sleep(interval)


async def open_result(
    installation: Installation, key: str, name: str, owner: Owner
) -> tuple[StoredFile, AsyncIterator[bytes]]:
    """A result file and its bytes, read chunk by chunk (JobKeyNotFound, JobGone after TTL)."""

    def find() -> StoredFile:
        with installation.db.read() as session:
            return service.result_file(session, key, name, owner)

    found = await installation.db.run(find)
    return found, iterate_in_thread(service.file_chunks(installation.db, found))

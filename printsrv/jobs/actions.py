"""What the adapters call: start a job, poll it, wait for it, read a result file.

Each function owns its unit of work (the transaction, the hop off the event loop), so an
adapter's whole business logic is one `await`.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from printsrv.jobs import service
from printsrv.jobs.service import JobView, Owner, StoredFile
from printsrv.jobs.types import check_caller, job_type
from printsrv.operations.installation import Installation
from printsrv.platform.models import utcnow
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


class _EndedJobs:
    """Answers of ended jobs, per process: a job that is done, failed or cancelled never
    changes again until it expires, and clients poll it again and again (the last poll of
    a loop, a retry, a second client). Keyed by key and caller, so the owner check is the
    database's answer for that caller; an entry past `expires_at` is dropped, and the
    database answers (410) again."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._views: OrderedDict[tuple[str, Owner], JobView] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, owner: Owner) -> JobView | None:
        with self._lock:
            view = self._views.get((key, owner))
            if view is None:
                return None
            if view.expires_at is None or view.expires_at <= utcnow():
                del self._views[(key, owner)]
                return None
            self._views.move_to_end((key, owner))
            return view

    def put(self, owner: Owner, view: JobView) -> None:
        if not view.end or view.expires_at is None:
            return
        with self._lock:
            self._views[(view.key, owner)] = view
            while len(self._views) > self._size:
                self._views.popitem(last=False)


_ended = _EndedJobs(10_000)


async def poll_job(installation: Installation, key: Any, owner: Owner) -> JobView:
    """Where the job stands (JobKeyNotFound for a missing key and someone else's alike)."""
    if isinstance(key, str):
        cached = _ended.get(key, owner)
        if cached is not None:
            return cached

    def read() -> JobView:
        with installation.db.read() as session:
            return service.read_job(session, key, owner)

    view = await installation.db.run(read)
    _ended.put(owner, view)
    return view


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

"""The one thread policy: blocking work runs off the event loop, and is always waited for.

Two doors, one primitive (`run_in_thread`):

- **Database work** (a transaction and nothing slow in it) goes through `Database.run`: the
  database's own threads, as many as pooled connections, so work waiting for a thread holds
  no connection (`platform/database.py`).
- **Any other blocking work** (password hashing, files, CUPS, PDF rendering, work that
  mixes these with a transaction) goes through `in_thread`: printsrv's work threads.
  Parts with a bound of their own (conversions, the CUPS client, report streams) keep
  their own executors and hop with `run_in_thread` too.

Starlette's `run_in_threadpool` is not used (a test forbids it): it abandons its thread
when the request is cancelled, so at server shutdown a transaction could still run while
the connection pool is disposed under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

# As many as Starlette's (anyio's) thread pool gave the web app and the RPC adapters before
# them: a request that waits on a slow client or on CUPS holds a thread, not the loop.
WORK_THREADS = 40

_work_threads: ThreadPoolExecutor | None = None
_work_threads_lock = threading.Lock()


async def run_in_thread(executor: Executor | None, work: Callable[..., T], *args: object) -> T:
    """Run `work(*args)` in one of `executor`'s threads (None: the event loop's default
    ones), with the caller's context variables (the request id of its log lines).

    Cancelled, the call still waits for the thread before it lets the cancellation through:
    a database call cut off that way (server shutdown) would otherwise hold its connection
    while the engine is disposed; the work is short, so waiting is cheap.
    """
    call = functools.partial(contextvars.copy_context().run, work, *args)
    future = asyncio.get_running_loop().run_in_executor(executor, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise


def _work_executor() -> ThreadPoolExecutor:
    global _work_threads
    if _work_threads is None:
        with _work_threads_lock:
            if _work_threads is None:
                _work_threads = ThreadPoolExecutor(WORK_THREADS, thread_name_prefix="printsrv-work")
    return _work_threads


async def in_thread(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """`fn(*args, **kwargs)` in printsrv's work threads, always waited for."""
    return await run_in_thread(_work_executor(), functools.partial(fn, *args, **kwargs))


async def iterate_in_thread(items: Iterator[T]) -> AsyncIterator[T]:
    """The items of a blocking iterator (a file read in chunks), each pulled in a work thread."""
    end = object()
    while True:
        item = await in_thread(next, items, end)
        if item is end:
            return
        yield item  # type: ignore[misc]

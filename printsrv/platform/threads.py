"""Blocking work off the event loop, in a thread that is always waited for."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

T = TypeVar("T")


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

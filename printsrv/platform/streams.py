"""A stream of bytes read from the database, produced on a thread of its own.

A server-side cursor (or PostgreSQL's COPY) lives on one connection in one open transaction,
and a pooled connection must be handed back by the thread that took it; so the session, its
transaction and the producing generator are created, advanced and closed on one dedicated
thread, for as long as the consumer reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

from sqlalchemy.orm import Session

from printsrv.platform.database import Database, unavailable_as_error
from printsrv.platform.threads import run_in_thread

__all__ = ["ReadStream"]


class ReadStream:
    """An async iterator over a generator that reads the database, run on its own thread.

    The session, its transaction and the generator are created, advanced and closed on
    one dedicated thread: a server-side cursor or COPY lives on one connection, and a
    pooled connection is handed back by the thread that took it. Chunks are pulled one at
    a time, so a slow client slows the reading instead of filling memory.
    """

    def __init__(self, db: Database, produce: Callable[[Session], Iterator[bytes]]) -> None:
        self._db = db
        self._produce = produce
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="printsrv-report")
        self._stack = ExitStack()
        self._chunks: Iterator[bytes] = iter(())
        self._closed = False

    @classmethod
    async def open(cls, db: Database, produce: Callable[[Session], Iterator[bytes]]) -> ReadStream:
        """Start reading; errors in the selection (unknown account ...) are raised here,
        before any byte of the answer is sent."""
        stream = cls(db, produce)
        try:
            await stream._on_thread(stream._start)
        except BaseException:
            stream.close()
            raise
        return stream

    def _start(self) -> None:
        session = self._stack.enter_context(self._db.read())
        # The session's own block is the ExitStack, which sees no error raised here or in
        # _next: map "cannot reach the database" here, or it is a 500 instead of a 503.
        with unavailable_as_error():
            chunks = self._produce(session)
        # Registered after the session, so it runs first: the cursor closes, then the session.
        self._stack.callback(getattr(chunks, "close", lambda: None))
        self._chunks = chunks

    async def _on_thread(self, func: Callable[[], Any]) -> Any:
        return await run_in_thread(self._executor, func)

    def __aiter__(self) -> ReadStream:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._on_thread(self._next)
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    def _next(self) -> bytes | None:
        with unavailable_as_error():
            return next(self._chunks, None)

    def close(self) -> None:
        """Close the generator and the session on their thread; returns at once."""
        if not self._closed:
            self._closed = True
            self._executor.submit(self._stack.close)
            self._executor.shutdown(wait=False)

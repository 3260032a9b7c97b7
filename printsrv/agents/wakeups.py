"""Waking an agent's long-poll as soon as a job for it is committed, on any machine.

A long-poll waits on an ``asyncio.Event`` of this process, registered under its agent's id.
It is set:

- by this process's commits (``printing.remote.ANNOUNCED`` in the session, read after the
  commit): enough for the embedded SQLite default with one server process;
- by PostgreSQL ``NOTIFY`` from any machine, through one listening connection per server
  process (``Listener``, run from the app's lifespan), not one per waiting agent.

An event is a hint, never the truth: a woken poll claims in the database, and a poll that
was not woken still looks again after ``fallback_secs`` (short on SQLite, where other
server processes cannot wake it; longer while the PostgreSQL listener is connected).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Final

import psycopg
from psycopg import sql
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from printsrv.printing.remote import ANNOUNCED, CHANNEL_SQL

log = logging.getLogger(__name__)

__all__ = ["Listener", "fallback_secs", "waiting", "wake"]

SQLITE_FALLBACK: Final = 1.0  # seconds between looks when nothing can wake a poll
LISTENING_FALLBACK: Final = 10.0  # ... while the PostgreSQL listener is connected
RETRY_INTERVAL: Final = 1.0

_lock = threading.Lock()
_waiters: dict[int, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
_listening: dict[str, float] = {}  # database URL -> monotonic time the listener was last alive


def wake(agent_id: int) -> None:
    """Set the events of every poll of this process waiting for ``agent_id`` (any thread)."""
    with _lock:
        waiters = list(_waiters.get(agent_id, ()))
    for loop, flag in waiters:
        with contextlib.suppress(RuntimeError):  # a loop that has closed meanwhile
            loop.call_soon_threadsafe(flag.set)


@contextlib.contextmanager
def waiting(agent_id: int) -> Iterator[asyncio.Event]:
    """An event set when a job for ``agent_id`` may have arrived, while the block runs."""
    entry = (asyncio.get_running_loop(), asyncio.Event())
    with _lock:
        _waiters.setdefault(agent_id, set()).add(entry)
    try:
        yield entry[1]
    finally:
        with _lock:
            entries = _waiters.get(agent_id)
            if entries is not None:
                entries.discard(entry)
                if not entries:
                    del _waiters[agent_id]


def fallback_secs(database_url: str) -> float:
    """How long a poll may wait before looking again without being woken."""
    alive = _listening.get(database_url)
    if alive is not None and time.monotonic() - alive < 3 * RETRY_INTERVAL + 2:
        return LISTENING_FALLBACK
    return SQLITE_FALLBACK


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    for agent_id in session.info.pop(ANNOUNCED, ()):
        wake(agent_id)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(ANNOUNCED, None)


class Listener:
    """The PostgreSQL listener of one server process: wakes polls on other machines' jobs.

    ``run()`` is a task of the app's lifespan; on SQLite it returns at once.
    """

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        url = make_url(database_url)
        self._conninfo: str | None = None
        if url.get_backend_name() == "postgresql":
            self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)

    def __repr__(self) -> str:
        return f"Listener(listening={self.database_url in _listening})"

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after a failure."""
        if self._conninfo is None:
            return
        failing = False
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # A dead listener only slows pick-up down to the fallback look.
                if not failing:
                    log.warning("agent wake-up listener disconnected: %s", error)
                failing = True
            finally:
                _listening.pop(self.database_url, None)
            await asyncio.sleep(RETRY_INTERVAL)

    async def _listen(self) -> None:
        assert self._conninfo is not None
        connection = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=5
        )
        async with connection:
            row = await (await connection.execute(f"SELECT {CHANNEL_SQL}")).fetchone()
            assert row is not None
            await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(row[0])))
            _listening[self.database_url] = time.monotonic()
            while True:
                async for notice in connection.notifies(timeout=RETRY_INTERVAL):
                    if notice.payload.isdigit():
                        wake(int(notice.payload))
                await connection.execute("SELECT 1")  # proves the connection alive
                _listening[self.database_url] = time.monotonic()

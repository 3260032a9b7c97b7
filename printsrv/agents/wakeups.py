"""Waking an agent's long-poll as soon as a job for it is committed, on any machine.

A long-poll waits on an ``asyncio.Event`` of this process, registered under its agent's id.
It is set:

- by this process's commits (``printing.remote.ANNOUNCED`` in the session, read after the
  commit): enough for the embedded SQLite default with one server process;
- by PostgreSQL ``NOTIFY`` from any machine, through the server's one notification listener
  (printsrv/platform/notifications.py; `listen` subscribes to it from the app's lifespan),
  not one connection per waiting agent.

An event is a hint, never the truth: a woken poll claims in the database, and a poll that
was not woken still looks again after ``fallback_secs`` (short on SQLite, where other
server processes cannot wake it; longer while the PostgreSQL listener is connected).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Final

from sqlalchemy import event
from sqlalchemy.orm import Session

from printsrv.platform.notifications import Listener, Topic
from printsrv.printing.remote import ANNOUNCED

__all__ = ["fallback_secs", "listen", "waiting", "wake"]

SQLITE_FALLBACK: Final = 1.0  # seconds between looks when nothing can wake a poll
LISTENING_FALLBACK: Final = 10.0  # ... while the PostgreSQL listener is connected

_lock = threading.Lock()
_waiters: dict[int, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}


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


def fallback_secs(listener: Listener) -> float:
    """How long a poll may wait before looking again without being woken."""
    return LISTENING_FALLBACK if listener.listening else SQLITE_FALLBACK


def _heard(payload: str) -> None:
    if payload.isdigit():
        wake(int(payload))


def listen(listener: Listener) -> Callable[[], None]:
    """Wake this process's polls on every machine's jobs for them; returns the function that
    stops it."""
    return listener.on_message(Topic.AGENT_JOBS, _heard)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    for agent_id in session.info.pop(ANNOUNCED, ()):
        wake(agent_id)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(ANNOUNCED, None)

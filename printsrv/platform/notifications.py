"""Changes made by other processes, heard as PostgreSQL notifications: one listener per server.

A server keeps things in memory that any process may change: the config, what
`systemStatus` reads, the pages of the document log, and the work its background loops wait
for (print jobs to follow, asynchronous jobs to run). Polling each of them a few times a
second cost an idle server about 3% of a core (bench/idle.py). Instead, a transaction that
changes one of them `announce`s a `Topic`; PostgreSQL delivers the notification at commit
(and drops it on rollback) to every listening connection, and each server's `Listener`
calls what subscribed to that topic.

The listener is trusted only while it is known to be connected (`listening`: it pings the
database every `PING_INTERVAL`, and `TRUST_WINDOW` without a sign of life ends the trust).
Whoever relies on it falls back to polling while it is not, and every (re)connection is
announced to every subscriber as "anything may have changed": notifications sent while a
listener was deaf are lost.

Each topic has its own channel, named after the topic and the schema (`channel_sql`), so
installations in other schemas of one database do not hear each other.

SQLite has no notifications between the processes that share the file: there the listener
never starts, `listening` stays False, and the loops poll as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Final

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

__all__ = ["Listener", "Topic", "announce", "channel_sql", "wait_for_change"]

PING_INTERVAL: Final = 1.0  # seconds between liveness checks of the listener's connection
TRUST_WINDOW: Final = 3.0  # no sign of life from the listener for this long: not listening
RETRY_INTERVAL: Final = 1.0  # seconds between reconnection attempts


class Topic(enum.Enum):
    """What changed; each topic is a channel of its own."""

    CONFIG = "config"  # a config property (the revision token moved)
    STATUS = "status"  # what systemStatus reads: batch jobs, the schema's version
    DOCUMENT_LOG = "doclog"  # what a page of the document log shows
    PRINT_JOBS = "print"  # a print job the tracker must follow
    JOBS = "jobs"  # an asynchronous job to run
    AGENT_JOBS = "agents"  # a job for a print agent (payload: the agent's id)


def channel_sql(topic: Topic) -> str:
    """The SQL expression of `topic`'s channel in the current schema (at most 63 bytes)."""
    return f"'printsrv_{topic.value}_' || left(md5(current_schema()), 16)"


def announce(session: Session, topic: Topic, payload: str = "") -> None:
    """Tell every listening server, when (if) this transaction commits, that `topic` changed
    (`payload`: which one, for subscribers that ask with `on_message`).

    A no-op on SQLite. PostgreSQL folds repeats (same topic and payload) within one
    transaction into one.
    """
    if session.get_bind().dialect.name == "postgresql":
        # On the session's connection, not session.execute: this runs inside flush and ORM
        # execute events too, which session.execute would re-enter.
        session.connection().exec_driver_sql(
            f"SELECT pg_notify({channel_sql(topic)}, %(payload)s)", {"payload": payload}
        )


Callback = Callable[[], object]


class Listener:
    """One connection of its own that LISTENs on every topic, in a thread of its own.

    Callbacks run on the listener's thread: they must be quick and thread-safe (set a flag,
    empty a cache, wake a loop with `wake_on`). `on_connect` callbacks run after each
    (re)connection, once LISTEN is in force, and `on_lost` ones when the connection is lost:
    what was heard before may be incomplete.
    """

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self._conninfo: str | None = None
        if url.get_backend_name() == "postgresql":
            self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._lock = threading.Lock()
        self._subscribers: dict[Topic | str, list[Callback]] = {}
        self._readers: dict[Topic, list[Callable[[str], object]]] = {}
        self._alive_at: float | None = None  # monotonic time the connection last proved alive
        self._stop = threading.Event()
        # Written to by stop(): the listener sleeps in select() on its connection and this,
        # so that it wakes only for a notification, a ping or a stop (an idle server's CPU).
        self._stop_pair: tuple[socket.socket, socket.socket] | None = None
        self._thread: threading.Thread | None = None
        self._users = 0

    def __repr__(self) -> str:
        return f"Listener(listening={self.listening})"

    @property
    def possible(self) -> bool:
        """Whether this database can notify at all (PostgreSQL)."""
        return self._conninfo is not None

    @property
    def listening(self) -> bool:
        """Whether the listener is connected and answered recently."""
        alive_at = self._alive_at
        return alive_at is not None and time.monotonic() - alive_at < TRUST_WINDOW

    @property
    def alive_at(self) -> float | None:
        """The monotonic time the connection last proved alive, while listening."""
        return self._alive_at if self.listening else None

    # --- subscribing ------------------------------------------------------------------------

    def subscribe(self, key: Topic | str, callback: Callback) -> Callable[[], None]:
        """Call `callback` on each notification of `key` (a Topic, or "connect" / "lost");
        returns the function that unsubscribes it."""
        with self._lock:
            self._subscribers.setdefault(key, []).append(callback)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.get(key, []).remove(callback)

        return unsubscribe

    def on(self, topic: Topic, callback: Callback) -> Callable[[], None]:
        """Subscribe `callback` to `topic`."""
        return self.subscribe(topic, callback)

    def on_message(self, topic: Topic, reader: Callable[[str], object]) -> Callable[[], None]:
        """Call `reader(payload)` on each notification of `topic`; returns the function that
        unsubscribes it."""
        with self._lock:
            self._readers.setdefault(topic, []).append(reader)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._readers.get(topic, []).remove(reader)

        return unsubscribe

    def on_connect(self, callback: Callback) -> Callable[[], None]:
        """Subscribe `callback` to every (re)connection."""
        return self.subscribe("connect", callback)

    def on_lost(self, callback: Callback) -> Callable[[], None]:
        """Subscribe `callback` to every loss of the connection."""
        return self.subscribe("lost", callback)

    def wake_on(self, topics: tuple[Topic, ...]) -> tuple[asyncio.Event, Callable[[], None]]:
        """An asyncio.Event of the running loop, set by any of `topics` and by every
        (re)connection; with the function that unsubscribes it (call it when done)."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                loop.call_soon_threadsafe(event.set)

        cancels = [self.on(topic, wake) for topic in topics] + [self.on_connect(wake)]

        def cancel() -> None:
            for one in cancels:
                one()

        return event, cancel

    def _dispatch(self, key: Topic | str) -> None:
        with self._lock:
            callbacks = list(self._subscribers.get(key, ()))
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("notification subscriber failed (%s)", key)

    # --- the thread ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start listening (PostgreSQL only; else a no-op). Starts and stops nest: the
        listener runs until as many `stop`s as `start`s."""
        if self._conninfo is None:
            return
        with self._lock:
            self._users += 1
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._stop_pair = socket.socketpair()
            self._thread = threading.Thread(
                target=self._listen_forever,
                args=(self._stop_pair[0],),
                name="printsrv-listener",
                daemon=True,
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop listening (at once) once every `start` has its `stop`."""
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users:
                return
            thread, self._thread = self._thread, None
            pair, self._stop_pair = self._stop_pair, None
        self._stop.set()
        if pair is not None:
            with contextlib.suppress(OSError):
                pair[1].send(b"x")
        if thread is not None:
            thread.join(timeout=5)
        if pair is not None:
            for end in pair:
                end.close()
        self._set_alive(None)

    def _set_alive(self, moment: float | None) -> None:
        was_alive = self._alive_at is not None
        self._alive_at = moment
        if moment is not None and not was_alive:
            self._dispatch("connect")
        elif moment is None and was_alive:
            self._dispatch("lost")

    def _listen_forever(self, stop_reader: socket.socket) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                self._listen(stop_reader)
                failing = False
            except psycopg.Error as error:
                if not failing:
                    log.warning("notification listener disconnected; polling instead: %s", error)
                failing = True
            except Exception:
                # The listener must outlive anything: a dead one only costs polls.
                if not failing:
                    log.exception("notification listener failed; polling instead")
                failing = True
            finally:
                self._set_alive(None)
            self._stop.wait(RETRY_INTERVAL)

    def _listen(self, stop_reader: socket.socket) -> None:
        assert self._conninfo is not None
        with psycopg.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=5,
            # A silent network failure must end in an error, not a wait of minutes.
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=1,
            keepalives_count=3,
            tcp_user_timeout=int(TRUST_WINDOW * 1000),
        ) as connection:
            topics: dict[str, Topic] = {}
            for topic in Topic:
                row = connection.execute(f"SELECT {channel_sql(topic)}").fetchone()
                assert row is not None
                topics[row[0]] = topic
                connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(row[0])))
            self._set_alive(time.monotonic())
            log.info("notification listener connected")
            pinged = time.monotonic()
            watched = [connection.fileno(), stop_reader.fileno()]
            while not self._stop.is_set():
                wait = max(0.0, pinged + PING_INTERVAL - time.monotonic())
                readable, _, _ = select.select(watched, [], [], wait)
                if stop_reader.fileno() in readable:
                    return
                if readable:
                    for notify in connection.notifies(timeout=0):
                        self._heard(topics, notify.channel, notify.payload)
                if time.monotonic() - pinged >= PING_INTERVAL:
                    connection.execute("SELECT 1")
                    pinged = time.monotonic()
                    # Notifications that arrived with the answer wait in psycopg's backlog:
                    # act on them before vouching for what was heard.
                    for notify in connection.notifies(timeout=0):
                        self._heard(topics, notify.channel, notify.payload)
                    self._set_alive(pinged)

    def _heard(self, topics: dict[str, Topic], channel: str, payload: str) -> None:
        topic = topics.get(channel)
        if topic is None:
            return
        self._dispatch(topic)
        with self._lock:
            readers = list(self._readers.get(topic, ()))
        for reader in readers:
            try:
                reader(payload)
            except Exception:
                log.exception("notification reader failed (%s)", topic)


async def wait_for_change(
    wake: asyncio.Event | None,
    listener: Listener | None,
    poll_interval: float,
    heard_interval: float,
    failing: bool = False,
) -> None:
    """A background loop's pause between rounds.

    While `listener` hears every change, until `wake` is set (a change was announced, or the
    listener reconnected) or at most `heard_interval` seconds; otherwise (SQLite, not
    connected, or the last round failed) `poll_interval` seconds, as a poll.
    """
    if wake is None or listener is None or failing or not listener.listening:
        await asyncio.sleep(poll_interval)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), heard_interval)

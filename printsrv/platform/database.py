"""The database: engine set-up for SQLite and PostgreSQL, and the one way to open a transaction.

Services take a `Session` and never commit; the adapter or CLI command opens the
transaction once with `db.transaction()`, so a failure anywhere rolls back everything the
request wrote. On SQLite, write transactions start with BEGIN IMMEDIATE, which serialises
writers up front instead of failing one of them half-way with "database is locked".
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from printsrv.errors import DatabaseUnavailable
from printsrv.platform.threads import run_in_thread

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Connections kept in the PostgreSQL pool, and threads that run database work for requests.
POOL_SIZE = 10
T = TypeVar("T")


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so "begin" below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _postgresql_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        pool_size=POOL_SIZE,
        max_overflow=10,
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
    )

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # Instead of pool_pre_ping, which costs a round trip on every checkout: a dead
        # connection is replaced (the pool retries with a fresh one) when the server has
        # closed it; and one that dies in use is a disconnect error, after which SQLAlchemy
        # renews the whole pool, so one request fails (503) and the next ones work.
        if _closed_by_server(dbapi_connection):
            raise exc.DisconnectionError("the database closed this pooled connection")

    return engine


def _closed_by_server(dbapi_connection: Any) -> bool:
    """Whether an idle pooled connection was closed by the server, without a round trip.

    An idle connection has nothing to read. A server that restarts or terminates it
    sends its goodbye ("terminating connection ...") and closes the socket, which makes
    the socket readable: a poll() with no wait tells, where a ping would take a round trip.
    """
    if dbapi_connection.closed:
        return True
    try:
        poller = select.poll()
        poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class Database:
    """One installation's database: an engine and transactions on it."""

    def __init__(self, url: str) -> None:
        self.url = url
        backend = make_url(url).get_backend_name()
        if backend == "sqlite":
            self.engine = _sqlite_engine(url)
            self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        elif backend == "postgresql":
            self.engine = _postgresql_engine(url)
            self._write_engine = self.engine
        else:
            raise ValueError(f"Database URL {make_url(url)!r}: only sqlite and postgresql work")
        self.backend = backend
        # Same pool; a connection from here is in autocommit mode until it goes back.
        self._statement_engine = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if backend == "postgresql"
            else None
        )

        self._threads: ThreadPoolExecutor | None = None
        self._threads_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"

    async def run(self, work: Callable[..., T], *args: object) -> T:
        """Run `work(*args)`, blocking database work, in one of the database's own threads.

        There are as many threads as pooled connections: work waiting for a thread holds no
        connection, and work never waits on the pool for a connection another thread has
        just returned. The threads serve only short database work, so a long conversion or
        upload in the default threads never holds a request's transaction back. A hop here
        costs a third of Starlette's `run_in_threadpool` (anyio's), which was a sixth of a
        REST transfer's server time. Cancelled, the call still waits for the thread
        (`threads.run_in_thread`), so the pool is never disposed under a transaction.
        """
        return await run_in_thread(self._executor(), work, *args)

    def _executor(self) -> ThreadPoolExecutor:
        threads = self._threads
        if threads is None:
            with self._threads_lock:
                if self._threads is None:
                    self._threads = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="printsrv-db")
                threads = self._threads
        return threads

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed at the end of the block, or rolled back on error."""
        with self._session(self._write_engine) as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; it does not take SQLite's write lock. Never commits."""
        with self._session(self.engine, commit=False) as session:
            yield session

    @contextmanager
    def statement(self, *, write: bool = True) -> Iterator[Connection]:
        """A Core connection for work that is ONE statement: the statement is the transaction.

        On PostgreSQL the connection is in autocommit mode, so the statement (CTEs and all)
        commits on its own, atomically, without the BEGIN and COMMIT round trips, which
        cost the server's process as much as a cheap statement. On SQLite it is the usual
        transaction (BEGIN IMMEDIATE when `write`), committed at the end of the block.
        Two statements here that must stand or fall together are a bug on PostgreSQL.
        """
        with unavailable_as_error():
            if self._statement_engine is not None:
                with self._statement_engine.connect() as connection:
                    yield connection
            elif write:
                with self._write_engine.begin() as connection:
                    yield connection
            else:
                with self.engine.connect() as connection:
                    yield connection

    @contextmanager
    def _session(self, engine: Engine, commit: bool = True) -> Iterator[Session]:
        with unavailable_as_error(), Session(engine, expire_on_commit=False) as session:
            try:
                yield session
                if commit:
                    session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        """Close every pooled connection, once the database's threads have finished their work.

        The database stays usable: a later call opens new connections and threads.
        """
        with self._threads_lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True)
        self.engine.dispose()


@contextmanager
def unavailable_as_error() -> Iterator[None]:
    """Turn "the database cannot be reached" in the block into `DatabaseUnavailable` (503).

    `Database.transaction`, `read` and `statement` do this for the work inside their block.
    Work on a session outside that block needs it too: a stream that entered `read()`
    through an ExitStack and reads later (`platform/streams.py`), whose errors never pass
    through the session's block. Raw psycopg errors count too (COPY reads libpq directly).
    """
    try:
        yield
    except (
        exc.OperationalError,
        exc.InterfaceError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
    ) as error:
        # The driver's text can hold host names and user names, never passwords;
        # still, the caller gets a fixed message and the log gets the detail.
        log.debug("database unavailable: %s", getattr(error, "orig", None) or error)
        raise DatabaseUnavailable(
            "The database is unavailable; nothing was changed. Try again shortly."
        ) from error


def serialise_on(session: Session, name: str) -> None:
    """Make this transaction wait for every other one, on any machine, that serialises on
    `name`, until it ends: check-then-write work (create the first admin only if none
    exists) cannot interleave. PostgreSQL: a transaction advisory lock keyed by the name;
    SQLite's write transactions start with BEGIN IMMEDIATE and so are serial already."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})

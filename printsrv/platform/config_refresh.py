"""Keeping a running server's config fresh on a thread and a database connection of its own.

A change of config (`printsrv config set`, another machine, JSON-RPC) is promised in force
on every server within a second. It used to be polled from printsrv's shared work threads
through the shared connection pool; under load both were busy (every work thread in a
request, more requests queued for them, every pooled connection taken), the poll waited
behind them, and an allowlist change once took 4 s to take effect
(tests/e2e/test_config_under_load.py). So the refresher owns what it needs: one thread,
one engine of its own (one connection at a time), and on PostgreSQL a listening connection.

On PostgreSQL a trigger on `config_revision` (migration 0016_guards) notifies the
installation's config channel at every commit that changes the revision token; the
refresher wakes on it and re-reads at once. It also re-reads every `interval` seconds, with
or without a notification (SQLite has none; a listener may be reconnecting), which is what
keeps a stale config from being trusted (`Config.stale_after`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from printsrv.errors import DatabaseUnavailable
from printsrv.platform.database import Database

__all__ = ["CHANNEL_SQL", "ConfigRefresher"]

log = logging.getLogger(__name__)

# The channel, from the schema the tables live in (identifiers are at most 63 bytes, hence
# the digest); the trigger computes the same from the schema of config_revision.
CHANNEL_SQL: Final = "'printsrv_config_' || left(md5(current_schema()), 16)"
RETRY_INTERVAL: Final = 1.0  # seconds between attempts to connect the listener again
_WAKE: Final = 0.25  # the longest wait for a notification, so that stop() is quick


class ConfigRefresher:
    """Calls `refresh(db)` on a thread of its own: when notified, and every `interval`.

    `db` is the refresher's own `Database` on the same URL, so a refresh never waits for
    the shared pool. Failures are logged once per outage; the loop outlives anything.
    """

    def __init__(
        self, refresh: Callable[[Database], None], database_url: str, interval: float
    ) -> None:
        self._refresh = refresh
        self._url = database_url
        self._interval = interval
        url = make_url(database_url)
        self._conninfo: str | None = None
        if url.get_backend_name() == "postgresql":
            self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start refreshing (returns at once)."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._refresh_forever, name="printsrv-config", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing; returns within about `interval` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _refresh_forever(self) -> None:
        db = Database(self._url)
        listener: psycopg.Connection | None = None
        next_attempt = 0.0
        failing = False
        try:
            while not self._stop.is_set():
                if listener is None and self._conninfo and time.monotonic() >= next_attempt:
                    listener = self._listen()
                    if listener is None:
                        next_attempt = time.monotonic() + RETRY_INTERVAL
                try:
                    db_failed = self._refresh_once(db, failing)
                except Exception:
                    # The refresher must outlive anything: a dead one would serve stale
                    # config until the staleness limit, then only 503s.
                    if not failing:
                        log.exception("config refresh failed")
                    db_failed = True
                failing = db_failed
                listener = self._wait(listener)
        finally:
            if listener is not None:
                listener.close()
            db.dispose()

    def _refresh_once(self, db: Database, failing: bool) -> bool:
        """One refresh; whether it failed for want of the database."""
        try:
            self._refresh(db)
        except DatabaseUnavailable as error:
            if not failing:
                log.warning(
                    "config refresh failed, database unavailable: %s",
                    getattr(error.__cause__, "orig", error.__cause__),
                )
            return True
        if failing:
            log.warning("database reachable again; config refreshed")
        return False

    def _listen(self) -> psycopg.Connection | None:
        assert self._conninfo is not None
        try:
            connection = psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=5,
                # A silent network failure must end in an error, not a wait of minutes.
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=1,
                keepalives_count=3,
            )
            row = connection.execute(f"SELECT {CHANNEL_SQL}").fetchone()
            assert row is not None
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(row[0])))
        except psycopg.Error as error:
            log.debug("config listener not connected: %s", error)
            return None
        return connection

    def _wait(self, listener: psycopg.Connection | None) -> psycopg.Connection | None:
        """Until a notification, `interval` or stop(); the listener, or None if it broke."""
        if listener is None:
            self._stop.wait(self._interval)
            return None
        deadline = time.monotonic() + self._interval
        try:
            # In slices, so that stop() is quick whatever the interval.
            while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
                if any(True for _ in listener.notifies(timeout=min(left, _WAKE), stop_after=1)):
                    # Notifications that came together are folded into one refresh.
                    for _ in listener.notifies(timeout=0):
                        pass
                    break
        except psycopg.Error as error:
            log.warning("config listener disconnected, polling meanwhile: %s", error)
            listener.close()
            return None
        return listener

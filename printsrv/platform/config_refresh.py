"""Keeping a running server's config fresh on a thread and a database connection of its own.

A change of config (`printsrv config set`, another machine, JSON-RPC) is promised in force
on every server within a second. It used to be polled from printsrv's shared work threads
through the shared connection pool; under load both were busy (every work thread in a
request, more requests queued for them, every pooled connection taken), the poll waited
behind them, and an allowlist change once took 4 s to take effect
(tests/e2e/test_config_under_load.py). So the refresher owns what it needs: one thread and
one engine of its own (one connection at a time).

It re-reads when woken: on PostgreSQL, a trigger on `config_revision` (migration
0016_guards) notifies the config channel at every commit that changes the revision token,
and the server's notification listener (`notifications.py`) wakes the refresher, as it does
after each (re)connection. While the listener hears every change, the refresher re-reads
anyway every `heard_interval` seconds; while it does not (SQLite, a lost connection), it
polls every `interval`, which is what keeps a stale config from being trusted
(`Config.stale_after`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from printsrv.errors import DatabaseUnavailable
from printsrv.platform.database import Database
from printsrv.platform.notifications import Listener, Topic

__all__ = ["ConfigRefresher"]

log = logging.getLogger(__name__)


class ConfigRefresher:
    """Calls `refresh(db)` on a thread of its own: when woken, and every `interval` (or
    `heard_interval` while `listener` hears every change).

    `db` is the refresher's own `Database` on the same URL, so a refresh never waits for
    the shared pool. Failures are logged once per outage; the loop outlives anything.
    """

    def __init__(
        self,
        refresh: Callable[[Database], None],
        database_url: str,
        interval: float,
        heard_interval: float,
        listener: Listener | None = None,
    ) -> None:
        self._refresh = refresh
        self._url = database_url
        self._interval = interval
        self._heard_interval = heard_interval
        self._listener = listener
        self._woken = threading.Event()  # a change was heard, the listener reconnected, or stop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: list[Callable[[], None]] = []

    def start(self) -> None:
        """Start refreshing (returns at once)."""
        self._stop.clear()
        if self._listener is not None:
            self._unsubscribe = [
                self._listener.on(Topic.CONFIG, self._woken.set),
                self._listener.on_connect(self._woken.set),
            ]
        self._thread = threading.Thread(
            target=self._refresh_forever, name="printsrv-config", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing (at once, or when the refresh under way ends)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        self._stop.set()
        self._woken.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _refresh_forever(self) -> None:
        db = Database(self._url)
        failing = False
        try:
            while not self._stop.is_set():
                self._woken.clear()  # before reading: a change during the read wakes us again
                try:
                    failing = self._refresh_once(db, failing)
                except Exception:
                    # The refresher must outlive anything: a dead one would serve stale
                    # config until the staleness limit, then only 503s.
                    if not failing:
                        log.exception("config refresh failed")
                    failing = True
                self._woken.wait(self._pause(failing))
        finally:
            db.dispose()

    def _pause(self, failing: bool) -> float:
        listener = self._listener
        if listener is not None and listener.listening and not failing:
            return self._heard_interval
        return self._interval

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

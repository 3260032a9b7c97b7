"""A cache of the admin document log's pages (``GET /restful/v1/documents``), kept correct
across worker processes and machines.

A page's JSON bytes are kept per normalised query (a `DocumentFilter`). Every committed write
to the document log empties the cache, and so does every committed change to what a page
shows of a print's job (its `status` and `job`: state, CUPS state, refund, ...; see
`SHOWN_JOB_COLUMNS`). The tracker's leases and poll times are not shown, so its claims leave
the cache alone:

- in every process through PostgreSQL ``LISTEN/NOTIFY``: statement triggers on ``document``
  and ``print_job`` (migration 0016_guards; for print_job, only an UPDATE that sets one of
  `SHOWN_JOB_COLUMNS`) notify inside the writing transaction, which PostgreSQL delivers at
  commit (and drops on rollback); each server's notification listener
  (printsrv/platform/notifications.py, on a connection of its own) clears its cache when
  one arrives. Being the database's own, the triggers see every write: printsrv's, raw SQL
  from psql, a restore while servers run. The channel is named after the schema
  (`CHANNEL_SQL`): installations in other schemas of the same database do not disturb
  each other;
- in the writing process also at once, without waiting for its own notification to come
  back: SQLAlchemy session events notice a flush or an ORM ``insert/update/delete(Document)``
  and, after the commit, clear every cache of the process, so a client reads its own write.

The cache is only used while the listener is known to be connected (it pings the database
every second; no answer for `TRUST_WINDOW` and every request queries again); it is emptied
whenever the listener (re)connects or is lost. A request that started reading before an
invalidation never stores its (possibly stale) page: it carries the cache's generation and
stores only if that has not moved.

SQLite is not cached: several worker processes may share the file and there is no
notification channel between them; the page query is local and cheap there.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from itertools import chain
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from printsrv.documents.models import Document
from printsrv.platform.notifications import TRUST_WINDOW, Listener, Topic, channel_sql
from printsrv.printing.models import PrintJob

log = logging.getLogger(__name__)

__all__ = [
    "CHANNEL_SQL",
    "SHOWN_JOB_COLUMNS",
    "TRUST_WINDOW",
    "DocumentLogCache",
    "invalidate_here",
]

# The channel, computed by the server from the schema the tables live in; the triggers
# compute the same from the schema of the table that changed.
CHANNEL_SQL: Final = channel_sql(Topic.DOCUMENT_LOG)
CAPACITY: Final = 256  # pages; a page is at most 1000 short entries
_WRITTEN: Final = "printsrv.document_log_written"  # Session.info flag: this transaction wrote
# The print_job columns a page of the log shows (printsrv.printing.history.JobSummary). An
# UPDATE that sets none of them (a tracker's lease, its next poll time, a waiting job's
# message) leaves the cache alone; one that sets any does not, even to the same value: a
# statement's values are known here, the row's old ones are not.
SHOWN_JOB_COLUMNS: Final = frozenset(
    {
        "document_id",
        "printer_name",
        "options",
        "pages",
        "sheets",
        "cost",
        "refund_trx_id",
        "state",
        "cups_job_id",
        "cups_state",
        "finished_at",
    }
)

_caches: weakref.WeakSet[DocumentLogCache] = weakref.WeakSet()
_caches_lock = threading.Lock()


def invalidate_here() -> None:
    """Empty every document log cache of this process (after a commit that wrote the log)."""
    with _caches_lock:
        caches = list(_caches)
    for cache in caches:
        cache.clear()


class DocumentLogCache:
    """Pages of the document log as JSON bytes, bounded (LRU), for one installation.

    ``lookup`` / ``store`` are called from the event loop and are cheap; the listener runs in
    a thread of its own between ``start`` and ``stop`` (the app's lifespan). Without a
    running listener (SQLite, the CLI, tests calling services) every lookup misses.
    """

    def __init__(
        self, database_url: str, capacity: int = CAPACITY, *, listener: Listener | None = None
    ) -> None:
        # The installation's listener is shared with the other subscribers of the process;
        # a cache built on its own (tests through a proxy) gets a listener of its own.
        self.listener = listener or Listener(database_url)
        self.capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._generation = 0
        self.listener.on(Topic.DOCUMENT_LOG, self.clear)
        # (Re)connected or lost: anything may have changed while the listener was deaf.
        self.listener.on_connect(self.clear)
        self.listener.on_lost(self.clear)
        with _caches_lock:
            _caches.add(self)

    def __repr__(self) -> str:
        return f"DocumentLogCache(entries={len(self._entries)}, listening={self.listening})"

    @property
    def listening(self) -> bool:
        """Whether the listener is connected and answered recently (else the cache is bypassed)."""
        return self.listener.listening

    def lookup(self, key: Hashable) -> tuple[bytes | None, int | None]:
        """The cached page for ``key`` (or None), and the ticket to `store` a fresh one with.

        The ticket is None while the cache is bypassed.
        """
        if not self.listening:
            return None, None
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body, self._generation

    def store(self, key: Hashable, ticket: int | None, body: bytes) -> None:
        """Keep ``body`` for ``key`` unless the log changed since `lookup` gave ``ticket``."""
        if ticket is None or not self.listening:
            return
        with self._lock:
            if ticket != self._generation:
                return  # read before an invalidation: may be stale
            self._entries[key] = body
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every page; pages being read now will not be stored."""
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    # --- the listener ----------------------------------------------------------------------

    def start(self) -> None:
        """Start listening for other processes' writes (PostgreSQL only; else a no-op)."""
        self.listener.start()

    def stop(self) -> None:
        """Stop listening and bypass the cache from now on."""
        self.listener.stop()
        self.clear()


# --- noticing writes (session events, for every Session of the process) --------------------


def _written(session: Session) -> None:
    """This transaction changed the document log: empty this process's caches at commit.

    (The other processes hear of it from the database's triggers.)"""
    session.info[_WRITTEN] = True


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush_context: Any) -> None:
    changed = chain(session.new, session.dirty, session.deleted)
    if any(isinstance(o, (Document, PrintJob)) for o in changed):
        _written(session)


def _sets_shown_job_columns(state: ORMExecuteState) -> bool:
    """Whether an ORM statement on print_job may change what a page shows."""
    if not state.is_update:
        return True  # an insert or delete of jobs
    # The statement's SET clause (Update._values: column -> value; no public accessor).
    # Unknown (a form SQLAlchemy might store differently): assume it does.
    values = getattr(state.statement, "_values", None)
    if not values:
        return True
    return any(getattr(column, "key", column) in SHOWN_JOB_COLUMNS for column in values)


@event.listens_for(Session, "do_orm_execute")
def _on_orm_execute(state: ORMExecuteState) -> None:
    # Bulk statements (retention's update(Document), the tracker's update(PrintJob)) do not
    # go through a flush.
    if state.is_insert or state.is_update or state.is_delete:
        mapper = state.bind_mapper
        if mapper is None:
            return
        if mapper.class_ is Document or (
            mapper.class_ is PrintJob and _sets_shown_job_columns(state)
        ):
            _written(state.session)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    # after_commit also fires when a savepoint is released; only the real commit counts.
    if not session.in_nested_transaction() and session.info.pop(_WRITTEN, False):
        invalidate_here()


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_WRITTEN, None)  # a rollback: nothing to invalidate

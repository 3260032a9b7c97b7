"""printsrv.documents.log_cache: pages of the document log, invalidated by every write to it,
here and (PostgreSQL LISTEN/NOTIFY) in other processes, bypassed while not listening."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import update
from sqlalchemy.engine import make_url
from support import TcpProxy, wait_until

from printsrv.documents import log as documents
from printsrv.documents.log import DocumentFilter, run_retention
from printsrv.documents.log_cache import CHANNEL_SQL, TRUST_WINDOW, DocumentLogCache
from printsrv.documents.models import Document
from printsrv.documents.store import PdfStore, StoredPdf
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.platform.models import utcnow

needs_postgresql = pytest.mark.skipif(
    not os.environ.get("PRINTSRV_TEST_DATABASE_URL"), reason="needs PostgreSQL"
)
PAGE = DocumentFilter()


@contextmanager
def _listening(installation: Installation) -> Iterator[DocumentLogCache]:
    """The installation's cache with its listener running (PostgreSQL only).

    Tests write what they need before it starts: this process hears its own notifications
    too (a moment after it has already cleared at commit), which would empty a page filled
    right after a write.
    """
    if installation.db.backend != "postgresql":
        pytest.skip("the cache is only used on PostgreSQL")
    cache = installation.document_log
    cache.start()
    try:
        wait_until(lambda: cache.listening, timeout=5)
        yield cache
    finally:
        cache.stop()


@pytest.fixture
def cache(installation: Installation) -> Iterator[DocumentLogCache]:
    with _listening(installation) as listening:
        yield listening


def _fill(cache: DocumentLogCache, key: object = PAGE, body: bytes = b"[]") -> None:
    found, ticket = cache.lookup(key)  # type: ignore[arg-type]
    assert found is None and ticket is not None
    cache.store(key, ticket, body)  # type: ignore[arg-type]


def _log_upload(installation: Installation, n: int = 0) -> int:
    digest = hashlib.sha256(str(n).encode()).hexdigest()
    with installation.db.transaction() as session:
        user = users.find_user(session, "janet") or users.add_user(session, "janet")
        document = documents.log_upload(
            session,
            user=user,
            title=f"doc {n}",
            pdf=StoredPdf(
                sha256=digest, size=10, path=installation.env.home / digest, created=True
            ),
            pages=1,
            source_type="application/pdf",
            source_bytes=10,
            source_sha256=digest,
            client_address="127.0.0.1",
            queue_name="webservice",
            ipp_options="{}",
            ext_id=None,
        )
        return document.id


def test_sqlite_is_never_cached(installation: Installation) -> None:
    if installation.db.backend != "sqlite":
        pytest.skip("SQLite only")
    cache = installation.document_log
    cache.start()  # a no-op: no notification channel between processes sharing the file
    try:
        assert not cache.listening
        assert cache.lookup(PAGE) == (None, None)
        cache.store(PAGE, None, b"[]")
        assert len(cache) == 0
    finally:
        cache.stop()


def test_without_a_listener_every_lookup_misses(installation: Installation) -> None:
    cache = installation.document_log  # never started, as in the CLI
    assert cache.lookup(PAGE) == (None, None)
    cache.store(PAGE, 0, b"[]")
    assert len(cache) == 0


def test_a_committed_document_write_empties_the_cache_at_once(
    installation: Installation, cache: DocumentLogCache
) -> None:
    _fill(cache)
    assert cache.lookup(PAGE)[0] == b"[]"
    document_id = _log_upload(installation)
    assert cache.lookup(PAGE)[0] is None  # no waiting: the writing process clears on commit
    _fill(cache)
    with installation.db.transaction() as session:
        session.get(Document, document_id).title = "renamed"  # type: ignore[union-attr]
    assert cache.lookup(PAGE)[0] is None


def test_retentions_bulk_update_empties_the_cache(installation: Installation) -> None:
    document_id = _log_upload(installation)
    with installation.db.transaction() as session:
        session.execute(
            update(Document)
            .where(Document.id == document_id)
            .values(created_at=utcnow() - timedelta(days=3))
        )
    with _listening(installation) as cache:
        _fill(cache)
        assert run_retention(installation.db, PdfStore(installation.env.home), days=1) == 1
        assert cache.lookup(PAGE)[0] is None


def test_a_rolled_back_write_and_reads_leave_the_cache_alone(installation: Installation) -> None:
    document_id = _log_upload(installation)
    with _listening(installation) as cache:
        _fill(cache)
        with installation.db.read() as session:
            documents.list_documents(session, PAGE)
        with pytest.raises(RuntimeError), installation.db.transaction() as session:
            session.get(Document, document_id).title = "never"  # type: ignore[union-attr]
            session.flush()
            raise RuntimeError("abandoned")
        time.sleep(0.2)  # room for a notification that must not come
        assert cache.lookup(PAGE)[0] == b"[]"


def test_a_page_read_before_an_invalidation_is_not_stored(
    installation: Installation, cache: DocumentLogCache
) -> None:
    found, ticket = cache.lookup(PAGE)
    assert found is None
    _log_upload(installation)  # lands while the page is being read
    cache.store(PAGE, ticket, b"[stale]")
    assert cache.lookup(PAGE)[0] is None


def test_the_cache_is_bounded_least_recently_used_first(cache: DocumentLogCache) -> None:
    cache.capacity = 2
    _fill(cache, DocumentFilter(page=1))
    _fill(cache, DocumentFilter(page=2))
    assert cache.lookup(DocumentFilter(page=1))[0] == b"[]"  # used: page 2 is now the oldest
    _fill(cache, DocumentFilter(page=3))
    assert len(cache) == 2
    assert cache.lookup(DocumentFilter(page=2))[0] is None
    assert cache.lookup(DocumentFilter(page=1))[0] == b"[]"


@needs_postgresql
def test_a_notification_from_another_connection_empties_the_cache(
    installation: Installation, cache: DocumentLogCache
) -> None:
    _fill(cache)
    url = make_url(installation.env.database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as other:
        other.execute(f"SELECT pg_notify({CHANNEL_SQL}, '')")  # another server's commit
    wait_until(lambda: cache.lookup(PAGE)[0] is None, timeout=2)


def _raw_sql(installation: Installation, statement: str, *, commit: bool = True) -> None:
    """Run ``statement`` on a connection of its own, as psql would: no printsrv, no ORM."""
    url = make_url(installation.env.database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as other:
        other.execute(statement)
        if not commit:
            other.rollback()


@needs_postgresql
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE document SET title = 'renamed'",
        "DELETE FROM print_job",
        "UPDATE print_job SET state = 'failed' WHERE id < 0",  # a shown column, no row
        "TRUNCATE document CASCADE",
    ],
)
def test_a_raw_sql_write_empties_the_cache_through_the_databases_triggers(
    installation: Installation, statement: str
) -> None:
    _log_upload(installation)
    with _listening(installation) as cache:
        _fill(cache)
        _raw_sql(installation, statement)
        wait_until(lambda: cache.lookup(PAGE)[0] is None, timeout=2)


@needs_postgresql
def test_raw_sql_that_changes_nothing_shown_or_rolls_back_leaves_the_cache(
    installation: Installation,
) -> None:
    with _listening(installation) as cache:
        _fill(cache)
        _raw_sql(installation, "UPDATE print_job SET lease_owner = 'x', next_poll_at = now()")
        _raw_sql(installation, "UPDATE document SET title = 'renamed'", commit=False)
        _raw_sql(installation, "SELECT 1")  # a round trip after them: any notice has come
        time.sleep(0.3)
        assert cache.lookup(PAGE)[0] == b"[]"


@needs_postgresql
def test_bypassed_while_the_listener_is_cut_off_and_emptied_on_reconnect(
    installation: Installation,
) -> None:
    if installation.db.backend != "postgresql":
        pytest.skip("PostgreSQL only")
    url = make_url(installation.env.database_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432)).start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    cache = DocumentLogCache(proxied)
    cache.start()
    try:
        wait_until(lambda: cache.listening, timeout=5)
        _fill(cache)
        proxy.stop()
        wait_until(lambda: not cache.listening, timeout=TRUST_WINDOW + 2)
        assert cache.lookup(PAGE) == (None, None)
        proxy.start()
        wait_until(lambda: cache.listening, timeout=10)
        assert cache.lookup(PAGE)[0] is None  # whatever was cached before is gone
    finally:
        cache.stop()
        proxy.stop()

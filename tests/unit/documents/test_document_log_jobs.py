"""The document log's print jobs (issue 14, item 12): each entry's job read in the page's one
statement, the status shown, and which job writes empty the cached pages (PostgreSQL)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, update
from support import wait_until

from printsrv.documents import log as documents
from printsrv.documents.log import DocumentFilter
from printsrv.documents.log_cache import DocumentLogCache
from printsrv.documents.models import Document
from printsrv.documents.store import StoredPdf
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.platform.models import utcnow
from printsrv.printing.history import print_status
from printsrv.printing.jobs import Verdict, finish_job, record_verdicts
from printsrv.printing.models import PrintJob
from printsrv.printing.tracker import Tracker

needs_postgresql = pytest.mark.skipif(
    not os.environ.get("PRINTSRV_TEST_DATABASE_URL"), reason="needs PostgreSQL"
)
PAGE = DocumentFilter(limit=50)


def _upload(installation: Installation, n: int) -> int:
    digest = hashlib.sha256(f"jobs {n}".encode()).hexdigest()
    with installation.db.transaction() as session:
        user = users.find_user(session, "janet") or users.add_user(session, "janet")
        document = documents.log_upload(
            session,
            user=user,
            title=f"doc {n}",
            pdf=StoredPdf(digest, 10, installation.env.home / digest, created=True),
            pages=3,
            source_type="application/pdf",
            source_bytes=10,
            source_sha256=digest,
            client_address="127.0.0.1",
            queue_name="webservice",
            ipp_options="{}",
            ext_id=f"ext-{n}",
        )
        document.created_at = utcnow() - timedelta(minutes=100 - n)
        session.flush()
        return document.id


def _print(installation: Installation, source_id: int, **job: Any) -> tuple[int, int]:
    """A print of ``source_id`` with its job row; returns (print entry, job) ids."""
    with installation.db.transaction() as session:
        source = session.get_one(Document, source_id)
        entry = documents.log_print(session, source=source, client_address="127.0.0.1")
        values: dict[str, Any] = {
            "printer_name": "capture",
            "options": '{"copies": "2"}',
            "pages": 3,
            "sides": 6,
            "sheets": 6,
            "cost": Decimal("0.60"),
            "state": "submitted",
            "cups_state": "processing",
            "cups_job_id": 40 + source_id,
        }
        values.update(job)
        row = PrintJob(document_id=entry.id, user_id=source.user_id, **values)
        session.add(row)
        session.flush()
        return entry.id, row.id


@contextmanager
def _statements(installation: Installation) -> Iterator[list[str]]:
    """The SQL statements sent on the read engine meanwhile."""
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    engine = installation.db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_page_with_many_jobs_is_one_statement(installation: Installation) -> None:
    uploads = [_upload(installation, n) for n in range(12)]
    prints = [_print(installation, source_id) for source_id in uploads[:8]]
    # Uploads 0 and 1 were printed twice: they show their newest print.
    again = [
        _print(installation, uploads[n], state="failed", cups_state="", message="no paper")
        for n in (0, 1)
    ]
    with installation.db.read() as session:
        session.connection()  # opened before counting (SQLite sets the connection up)
        with _statements(installation) as sent:
            entries = documents.list_documents(session, PAGE)
    assert len(sent) == 1, sent
    by_id = {entry.id: entry for entry in entries}
    assert len(entries) == 12 + 10
    for (print_id, _), source_id in zip(prints, uploads, strict=False):
        job = by_id[print_id].job
        assert job is not None
        assert (job.printer, job.status, job.copies, job.sheets) == ("capture", "processing", 2, 6)
        assert job.cost == Decimal("0.60") and job.refund == Decimal(0) and job.reason == ""
        if source_id not in uploads[:2]:
            assert by_id[source_id].job == job  # the upload shows its print
    for n, (print_id, _) in enumerate(again):
        newest = by_id[uploads[n]].job
        assert newest == by_id[print_id].job
        assert newest is not None and newest.status == "failed" and newest.reason == "no paper"
    for source_id in uploads[8:]:
        assert by_id[source_id].job is None  # never printed


def test_one_entry_is_one_statement_too(installation: Installation) -> None:
    source_id = _upload(installation, 1)
    print_id, _ = _print(installation, source_id)
    with installation.db.read() as session:
        session.connection()
        with _statements(installation) as sent:
            by_id = documents.get_entry(session, print_id)
            by_ext_id = documents.find_entry_by_ext_id(session, "ext-1")
    assert len(sent) == 2
    assert by_id.job is not None and by_id.job == by_ext_id.job
    assert (by_id.type, by_ext_id.type, by_ext_id.id) == ("print", "in", source_id)


def test_a_users_page_has_only_their_entries(installation: Installation) -> None:
    source_id = _upload(installation, 1)
    print_id, _ = _print(installation, source_id)
    with installation.db.transaction() as session:
        rijk = users.add_user(session, "rijk")
        janet = users.find_user(session, "janet")
        assert janet is not None
        janet_id, rijk_id = janet.id, rijk.id
    with installation.db.read() as session:
        theirs = documents.list_documents(session, DocumentFilter(user_id=rijk_id))
        mine = documents.list_documents(session, DocumentFilter(user_id=janet_id))
    assert theirs == []
    assert [entry.id for entry in mine] == [print_id, source_id]


@pytest.mark.parametrize(
    ("state", "cups_state", "status"),
    [
        ("queued", "", "queued"),
        ("submitted", "", "pending"),
        ("submitted", "pending", "pending"),
        ("submitted", "processing", "processing"),
        ("submitted", "held", "held"),
        ("completed", "completed", "completed"),
        ("canceled", "canceled", "canceled"),
        ("aborted", "aborted", "aborted"),
        ("failed", "", "failed"),
        ("failed", "processing", "failed"),  # lost by CUPS while it said processing
    ],
)
def test_the_status_shown(state: str, cups_state: str, status: str) -> None:
    assert print_status(state, cups_state) == status


# --- the cache (PostgreSQL) ------------------------------------------------------------------


@pytest.fixture
def cache(installation: Installation) -> Iterator[DocumentLogCache]:
    if installation.db.backend != "postgresql":
        pytest.skip("the cache is only used on PostgreSQL")
    cache = installation.document_log
    cache.start()
    try:
        wait_until(lambda: cache.listening, timeout=5)
        yield cache
    finally:
        cache.stop()


def _fill(cache: DocumentLogCache) -> None:
    found, ticket = cache.lookup(PAGE)
    assert found is None and ticket is not None
    cache.store(PAGE, ticket, b"[]")
    assert cache.lookup(PAGE)[0] == b"[]"


@pytest.fixture
def open_job(installation: Installation) -> int:
    """A print whose job CUPS has, due for the tracker's next look; written before the
    listener starts (its own notifications would empty a page filled right after)."""
    _, job_id = _print(installation, _upload(installation, 1), next_poll_at=utcnow())
    return job_id


@needs_postgresql
def test_the_trackers_leases_and_polls_leave_the_cache_alone(
    installation: Installation, open_job: int, cache: DocumentLogCache
) -> None:
    _fill(cache)
    claimed = Tracker(installation, owner="test-tracker")._claim(utcnow())
    assert [c.id for c in claimed] == [open_job]
    with installation.db.transaction() as session:
        # A waiting job's look that CUPS did not answer: message and poll time only.
        session.execute(
            update(PrintJob)
            .where(PrintJob.id == open_job)
            .values(
                message="waiting for CUPS",
                next_poll_at=utcnow() + timedelta(seconds=2),
                poll_failures=PrintJob.poll_failures + 1,
                lease_owner=None,
                lease_until=None,
            )
        )
    assert cache.lookup(PAGE)[0] == b"[]"


@needs_postgresql
@pytest.mark.parametrize("final", ["completed", "aborted"])
def test_a_job_reaching_its_end_empties_the_cache(
    installation: Installation, open_job: int, cache: DocumentLogCache, final: str
) -> None:
    _fill(cache)
    verdict = Verdict(open_job, 41, final, "" if final == "completed" else "jam", final)
    record_verdicts(installation.db, [verdict], "test-tracker")
    assert cache.lookup(PAGE)[0] is None  # this process, at commit
    with installation.db.read() as session:
        assert session.get_one(PrintJob, open_job).state == final


@needs_postgresql
def test_cups_state_and_refunds_empty_the_cache(
    installation: Installation, open_job: int, cache: DocumentLogCache
) -> None:
    _fill(cache)
    owner = "test-tracker"
    with installation.db.transaction() as session:
        session.execute(update(PrintJob).values(lease_owner=owner))
    assert cache.lookup(PAGE)[0] == b"[]"
    waiting = Verdict(open_job, 41, None, "", "pending", next_poll_at=utcnow())
    record_verdicts(installation.db, [waiting], owner)  # CUPS now says pending
    assert cache.lookup(PAGE)[0] is None
    _fill(cache)
    with installation.db.transaction() as session:
        assert finish_job(session, open_job, "failed", "lost", cups_state="processing")
    assert cache.lookup(PAGE)[0] is None


@needs_postgresql
def test_a_poll_that_finds_cups_state_unchanged_leaves_the_cache_alone(
    installation: Installation, open_job: int, cache: DocumentLogCache
) -> None:
    owner = "test-tracker"
    _fill(cache)
    with installation.db.transaction() as session:  # a lease is not shown: the page stays
        session.execute(update(PrintJob).values(lease_owner=owner))
    again = Verdict(open_job, 41, None, "", "processing", next_poll_at=utcnow())
    record_verdicts(installation.db, [again], owner)  # the fixture's job is processing already
    assert cache.lookup(PAGE)[0] == b"[]"
    with installation.db.read() as session:
        job = session.get_one(PrintJob, open_job)
        assert (job.cups_state, job.lease_owner) == ("processing", None)


@needs_postgresql
def test_another_servers_job_update_reaches_this_cache(
    installation: Installation, open_job: int, cache: DocumentLogCache
) -> None:
    _fill(cache)
    # Another server (a process of its own) sees CUPS start the job: only its notification
    # can empty this process's cache.
    another_server = (
        "import sys\n"
        "from sqlalchemy import update\n"
        "import printsrv.documents.log_cache  # a server has it loaded\n"
        "from printsrv.platform.database import Database\n"
        "from printsrv.printing.models import PrintJob\n"
        "db = Database(sys.argv[1])\n"
        "with db.transaction() as session:\n"
        "    session.execute(update(PrintJob).where(PrintJob.id == int(sys.argv[2]))"
        ".values(cups_state='processing'))\n"
        "db.dispose()\n"
    )
    subprocess.run(
        [sys.executable, "-c", another_server, installation.env.database_url, str(open_job)],
        check=True,
        timeout=60,
    )
    wait_until(lambda: cache.lookup(PAGE)[0] is None, timeout=5)

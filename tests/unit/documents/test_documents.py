"""printsrv.documents.log: the content-addressed PDF store and the document log's services."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from printing_support import pdf_bytes

from printsrv.documents import log as documents
from printsrv.documents.log import DocumentFilter
from printsrv.documents.models import Document
from printsrv.documents.store import PdfStore, StoredPdf, sha256_of
from printsrv.errors import Conflict, InvalidInput, NotFound
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.platform.models import utcnow
from printsrv.platform.uploads import clean_file_name


def test_the_store_names_files_by_digest_in_shards(tmp_path: Path) -> None:
    store = PdfStore(tmp_path)
    source = tmp_path / "incoming.pdf"
    source.write_bytes(pdf_bytes(1))
    digest = sha256_of(source)
    stored = store.put(source)
    assert stored.created and stored.sha256 == digest
    assert stored.path == tmp_path / "documents" / digest[:2] / digest[2:4] / f"{digest}.pdf"
    assert not source.exists()
    assert oct(stored.path.stat().st_mode & 0o777) == "0o600"


def test_the_same_bytes_are_stored_once(tmp_path: Path) -> None:
    store = PdfStore(tmp_path)
    content = pdf_bytes(2)
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(content)
    second.write_bytes(content)
    one = store.put(first)
    os.utime(one.path, (0, 0))
    two = store.put(second)
    assert not two.created and two.path == one.path and not second.exists()
    assert one.path.stat().st_mtime > 0  # refreshed: retention sees a new upload
    assert list(store.digests()) == [one.sha256]


def test_store_paths_only_come_from_digests(tmp_path: Path) -> None:
    store = PdfStore(tmp_path)
    for bad in ("../../etc/passwd", "ABC", "a" * 63, "g" * 64):
        with pytest.raises(ValueError):
            store.path_for(bad)


def test_remove_keeps_a_file_refreshed_after_the_cutoff(tmp_path: Path) -> None:
    store = PdfStore(tmp_path)
    source = tmp_path / "x"
    source.write_bytes(pdf_bytes(1))
    stored = store.put(source)
    assert not store.remove(stored.sha256, unless_newer_than=utcnow() - timedelta(hours=1))
    assert store.remove(stored.sha256, unless_newer_than=utcnow() + timedelta(seconds=1))
    assert not store.has(stored.sha256)


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("report.pdf", "report.pdf"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("dir/report.pdf", "report.pdf"),
        ("  spaced.txt ", "spaced.txt"),
        ("", ""),
    ],
)
def test_file_names_become_titles(name: str, title: str) -> None:
    assert clean_file_name(name) == title


@pytest.mark.parametrize("name", ["../x.pdf", "a/../../b", "nul\x00.pdf", "bell\x07", "x" * 256])
def test_hostile_file_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        clean_file_name(name)


@pytest.mark.parametrize(
    ("value", "stored"), [(None, None), ("", None), ("  ref-1 ", "ref-1"), ("é" * 255, "é" * 255)]
)
def test_ext_id_is_stripped(value: str | None, stored: str | None) -> None:
    assert documents.check_ext_id(value) == stored


@pytest.mark.parametrize("value", ["x" * 256, "a\x00b", "a/b"])
def test_bad_ext_ids_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput):
        documents.check_ext_id(value)


def _log(installation: Installation, count: int) -> list[int]:
    """Log ``count`` uploads of janet, an hour apart, the newest now."""
    store = PdfStore(installation.env.home)
    ids = []
    with installation.db.transaction() as session:
        user = users.add_user(session, "janet")
        for index in range(count):
            path = installation.env.home / f"p{index}"
            path.write_bytes(pdf_bytes(1, text=str(index)))
            stored = store.put(path)
            document = documents.log_upload(
                session,
                user=user,
                title=f"doc {index}",
                pdf=stored,
                pages=1,
                source_type="application/pdf",
                source_bytes=stored.size,
                source_sha256=stored.sha256,
                client_address="127.0.0.1",
                queue_name="webservice",
                ipp_options="{}",
                ext_id=f"ext-{index}",
            )
            document.created_at = utcnow() - timedelta(hours=count - index)
            ids.append(document.id)
    return ids


def test_list_filters_and_pages(installation: Installation) -> None:
    ids = _log(installation, 7)
    with installation.db.read() as session:
        page = documents.list_documents(session, DocumentFilter())
        assert [d.id for d in page] == ids[::-1][:5]
        second = documents.list_documents(session, DocumentFilter(page=1))
        assert [d.id for d in second] == ids[::-1][5:]
        oldest = documents.list_documents(session, DocumentFilter(newest_first=False, limit=2))
        assert [d.id for d in oldest] == ids[:2]
        window = documents.list_documents(
            session,
            DocumentFilter(
                created_gte=utcnow() - timedelta(hours=3, minutes=30),
                created_lte=utcnow() - timedelta(hours=1, minutes=30),
            ),
        )
        assert [d.id for d in window] == [ids[5], ids[4]]
        assert documents.list_documents(session, DocumentFilter(doc_type="out")) == []
        assert documents.find_by_ext_id(session, "ext-3").id == ids[3]
        with pytest.raises(NotFound):
            documents.find_by_ext_id(session, "ext-99")
        with pytest.raises(NotFound):
            documents.get_document(session, 12345)


@pytest.mark.parametrize(
    "kwargs", [{"doc_type": "everything"}, {"limit": 0}, {"limit": 1001}, {"page": -1}]
)
def test_bad_filters_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        DocumentFilter(**kwargs)  # type: ignore[arg-type]


def _upload_with_ext_id(installation: Installation, user_name: str, ext_id: str) -> int:
    with installation.db.transaction() as session:
        user = users.get_user(session, user_name)
        stored = StoredPdf("a" * 64, 1, Path("/nonexistent"), created=False)
        return documents.log_upload(
            session, user=user, title="t", pdf=stored, pages=1, source_type="",
            source_bytes=1, source_sha256="", client_address="", queue_name="webservice",
            ipp_options="{}", ext_id=ext_id,
        ).id  # fmt: skip


def test_ext_id_is_unique_per_user(installation: Installation) -> None:
    (first,) = _log(installation, 1)
    with pytest.raises(Conflict, match=f"ext_id 'ext-0' is already used by document {first}"):
        _upload_with_ext_id(installation, "janet", "ext-0")
    with installation.db.transaction() as session:
        users.add_user(session, "rijk")
    assert _upload_with_ext_id(installation, "rijk", "ext-0") > first  # per user


def test_uploads_racing_for_one_ext_id_make_one_document(installation: Installation) -> None:
    _log(installation, 1)
    outcomes: list[object] = []
    barrier = threading.Barrier(4)

    def upload() -> None:
        barrier.wait()
        try:
            outcomes.append(_upload_with_ext_id(installation, "janet", "same"))
        except Conflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(o, int) for o in outcomes) == 1
    assert sum(isinstance(o, Conflict) for o in outcomes) == 3


def test_releasable_only_for_the_owner_while_stored_and_fresh(installation: Installation) -> None:
    (document_id,) = _log(installation, 1)  # an hour old
    with installation.db.transaction() as session:
        other = users.add_user(session, "rijk")
        janet = users.get_user(session, "janet")
        now = utcnow()
        found = documents.releasable_document(
            session, user=janet, document_id=document_id, expiry_hours=2, now=now
        )
        assert found.id == document_id
        with pytest.raises(NotFound):
            documents.releasable_document(
                session, user=other, document_id=document_id, expiry_hours=2, now=now
            )
        with pytest.raises(Conflict, match="expired"):
            documents.releasable_document(
                session, user=janet, document_id=document_id, expiry_hours=1, now=now
            )
        session.get(Document, document_id).store = False  # type: ignore[union-attr]
        with pytest.raises(Conflict, match="no longer stored"):
            documents.releasable_document(
                session, user=janet, document_id=document_id, expiry_hours=2, now=now
            )


def test_retention_zero_keeps_everything(installation: Installation) -> None:
    _log(installation, 2)
    store = PdfStore(installation.env.home)
    assert documents.run_retention(installation.db, store, days=0) == 0
    assert len(list(store.digests())) == 2


def test_orphans_and_stale_work_directories_are_swept(installation: Installation) -> None:
    _log(installation, 1)
    store = PdfStore(installation.env.home)
    orphan = installation.env.home / "orphan"
    orphan.write_bytes(pdf_bytes(3))
    lost = store.put(orphan)
    work = store.work_dir()
    (work / "upload").write_bytes(b"half an upload")
    slow = store.work_dir()
    (slow / "upload").write_bytes(b"an upload still coming in")
    old = time.time() - 2 * 3600
    for path in (lost.path, work, work / "upload", slow):
        os.utime(path, (old, old))
    assert documents.sweep_orphans(installation.db, store) == 1
    assert not store.has(lost.sha256)
    assert len(list(store.digests())) == 1  # the logged one stays
    assert not work.exists()
    assert slow.exists()  # its file is still being written


def test_created_is_rendered_like_savapage() -> None:
    from printsrv.rest.documents import created_text

    text = created_text(datetime(2019, 9, 13, 7, 18, 38, tzinfo=UTC))
    assert len(text) == 24 and text[10] == "T" and text[-5] in "+-"
    assert datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z") == datetime(
        2019, 9, 13, 7, 18, 38, tzinfo=UTC
    )

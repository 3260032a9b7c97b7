"""The document log over REST (admin): GET /documents, /documents/<id>, /documents/ext_id=...,
their /pdf variants, and retention, in the contract's shapes (C.2.3.2.2-C.2.3.2.6)."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from printing_support import (
    ADMIN,
    PrintSetup,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    upload,
)
from pypdf import PdfReader
from sqlalchemy import select, update
from support import LiveServer, wait_until

from printsrv.documents.log import run_retention
from printsrv.documents.models import Document
from printsrv.documents.store import PdfStore

CREATED_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}")


@pytest.fixture
def server(printing_setup: PrintSetup) -> Iterator[LiveServer]:  # noqa: F811
    live = LiveServer(printing_setup.installation).start()
    yield live
    live.stop()


def api(server: LiveServer, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{server.url}/restful/v1{path}", params=params, auth=ADMIN)


@pytest.fixture
def logged(printing_setup: PrintSetup, server: LiveServer) -> dict[str, int]:  # noqa: F811
    """Three uploads a day apart (one with an ext_id) and one print of the last one."""
    setup = printing_setup
    ids = {}
    for name, ext_id in (("Document A.pdf", ""), ("Document B.pdf", "c5a9dd70e931"), ("C.pdf", "")):
        fields = {"ext_id": ext_id} if ext_id else {}
        response = upload(server.url, setup.auth, name, pdf_bytes(1, text=name), **fields)
        assert response.status_code == 200, response.text
        ids[name] = response.json()["id"]
    released = httpx.post(
        f"{server.url}/restful/v1/documents/{ids['Document B.pdf']}/print",
        auth=setup.auth,
        data={"printer": "null"},
    )
    assert released.status_code == 200, released.text
    with setup.installation.db.transaction() as session:
        print_id = session.scalars(select(Document.id).where(Document.doc_type == "print")).one()
        ids["print"] = print_id
        base = datetime(2019, 9, 12, 7, 49, 48, tzinfo=UTC)
        for offset, doc_id in enumerate(
            [ids["Document A.pdf"], ids["Document B.pdf"], ids["C.pdf"], print_id]
        ):
            session.execute(
                update(Document)
                .where(Document.id == doc_id)
                .values(created_at=base + timedelta(days=offset))
            )
    return ids


def test_list_is_newest_first_five_by_default_in_the_contract_shape(
    server: LiveServer, logged: dict[str, int]
) -> None:
    response = api(server, "/documents")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert [d["id"] for d in body] == [
        logged["print"], logged["C.pdf"], logged["Document B.pdf"], logged["Document A.pdf"]
    ]  # fmt: skip
    printed_ids = (logged["print"], logged["Document B.pdf"])
    for entry in body:
        assert list(entry)[:6] == ["id", "ext_id", "type", "title", "created", "store"]
        # A print, and the upload it printed, also show the print's job (after those six).
        assert ("status" in entry, "job" in entry) == (entry["id"] in printed_ids,) * 2
        assert CREATED_RE.fullmatch(entry["created"]), entry["created"]
        assert entry["store"] is True
    printed = body[0]
    assert printed["type"] == "print"
    assert printed["ext_id"] == "c5a9dd70e931"  # a print shows the ext_id of what it printed
    assert printed["title"] == "Document B.pdf"
    parsed = datetime.strptime(printed["created"], "%Y-%m-%dT%H:%M:%S%z")
    assert parsed == datetime(2019, 9, 15, 7, 49, 48, tzinfo=UTC)


def test_sort_type_limit_and_page(server: LiveServer, logged: dict[str, int]) -> None:
    ascending = api(server, "/documents", sort="+created").json()
    assert ascending[0]["id"] == logged["Document A.pdf"]
    # An unencoded '+' arrives as a space and means the same.
    raw = httpx.get(f"{server.url}/restful/v1/documents?sort=+created", auth=ADMIN).json()
    assert raw == ascending
    prints = api(server, "/documents", sort="-created", type="print", limit="2", page="0").json()
    assert [d["id"] for d in prints] == [logged["print"]]
    assert [d["id"] for d in api(server, "/documents", type="out").json()] == [logged["print"]]
    uploads = api(server, "/documents", type="in", limit="2", page="1").json()
    assert [d["id"] for d in uploads] == [logged["Document A.pdf"]]
    assert api(server, "/documents", type="pdf").json() == []
    assert api(server, "/documents", type="ticket").json() == []


def test_created_bounds(server: LiveServer, logged: dict[str, int]) -> None:
    body = api(
        server, "/documents", created_gte="2019-09-13T00:00:00+00:00",
        created_lte="2019-09-14T23:59:59+00:00", sort="+created",
    ).json()  # fmt: skip
    assert [d["id"] for d in body] == [logged["Document B.pdf"], logged["C.pdf"]]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"type": "everything"}, "type 'everything'"),
        ({"sort": "title"}, "sort 'title'"),
        ({"limit": "0"}, "limit 0"),
        ({"limit": "ten"}, "limit 'ten'"),
        ({"page": "-1"}, "page '-1'"),
        ({"created_gte": "yesterday"}, "created_gte 'yesterday'"),
    ],
)
def test_bad_list_parameters_are_400(
    server: LiveServer, params: dict[str, str], words: str
) -> None:
    response = api(server, "/documents", **params)
    assert response.status_code == 400
    assert words in response.json()["error"]


def test_one_document_by_id_and_by_ext_id(server: LiveServer, logged: dict[str, int]) -> None:
    # The print of B finishes in CUPS meanwhile; compare the two look-ups once it has, or the
    # second could see a later status than the first.
    by_id = wait_until(
        lambda: (
            answer
            if (answer := api(server, f"/documents/{logged['Document B.pdf']}")).json()["status"]
            == "completed"
            else None
        ),
        timeout=20,
    )
    assert by_id.status_code == 200
    contract = dict(list(by_id.json().items())[:6])
    assert contract == {
        "id": logged["Document B.pdf"],
        "ext_id": "c5a9dd70e931",
        "type": "in",
        "title": "Document B.pdf",
        "created": by_id.json()["created"],
        "store": True,
    }
    assert by_id.json()["job"]["printer"] == "null"  # B was printed: its print's job shows
    assert api(server, "/documents/ext_id=c5a9dd70e931").json() == by_id.json()


def test_the_pdf_variants_stream_the_stored_pdf(server: LiveServer, logged: dict[str, int]) -> None:
    for path in (
        f"/documents/{logged['Document B.pdf']}/pdf",
        "/documents/ext_id=c5a9dd70e931/pdf",
    ):
        response = api(server, path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["content-disposition"] == 'attachment; filename="Document_B.pdf"'
        assert (
            PdfReader(io.BytesIO(response.content))
            .pages[0]
            .extract_text()
            .startswith("Document B.pdf page 1")
        )


@pytest.mark.parametrize(
    "path", ["/documents/999999", "/documents/abc", "/documents/ext_id=nope", "/documents/9/pdf"]
)
def test_unknown_documents_are_404_json(server: LiveServer, path: str) -> None:
    response = api(server, path)
    assert response.status_code == 404
    assert response.json()["succes"] is False


def test_the_log_is_for_the_admin_only(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    assert httpx.get(f"{server.url}/restful/v1/documents").status_code == 401
    as_user = httpx.get(f"{server.url}/restful/v1/documents", auth=printing_setup.auth)
    assert as_user.status_code == 401


def test_retention_removes_old_pdfs_and_flips_store(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    logged: dict[str, int],
) -> None:
    installation = printing_setup.installation
    store = PdfStore(installation.env.home)
    with installation.db.read() as session:
        for document in session.scalars(select(Document)):
            # The files are as old as their documents (the fixture back-dated the rows).
            stamp = document.created_at.timestamp()
            os.utime(store.path_for(document.pdf_sha256), (stamp, stamp))
    now = datetime(2019, 9, 14, 12, 0, tzinfo=UTC)  # A (12th) and B (13th) are > 1 day old
    changed = run_retention(installation.db, store, days=1, now=now)
    assert changed == 2
    shown = {d["id"]: d["store"] for d in api(server, "/documents", limit="10").json()}
    assert shown == {
        logged["Document A.pdf"]: False,
        logged["Document B.pdf"]: False,
        logged["C.pdf"]: True,
        logged["print"]: True,  # printed later, so it keeps B's PDF
    }
    assert api(server, f"/documents/{logged['Document A.pdf']}/pdf").status_code == 404
    assert api(server, f"/documents/{logged['print']}/pdf").status_code == 200
    with installation.db.read() as session:
        digest_a = session.get(Document, logged["Document A.pdf"]).pdf_sha256  # type: ignore[union-attr]
        digest_b = session.get(Document, logged["Document B.pdf"]).pdf_sha256  # type: ignore[union-attr]
    assert not store.has(digest_a)  # nobody keeps A: its file is gone
    assert store.has(digest_b)  # the print still keeps B's file

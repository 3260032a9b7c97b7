"""POST /restful/v1/documents/print and /documents/<id>/print over a real socket, against a
private cupsd: formats, options as the printer receives them, charging, refunds, failures."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from cupsd import FAIL_MESSAGE, PrivateCups, parse_backend_options
from printing_support import (
    POSTSCRIPT,
    PrintSetup,
    docx_bytes,
    image_bytes,
    odt_bytes,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    set_config_live,
    upload,
)
from pypdf import PdfReader
from sqlalchemy import select
from support import LiveServer, require_programs, set_config

from financial.schema import AccountTrx
from printsrv.documents.models import Document
from printsrv.documents.store import PdfStore, sha256_of
from printsrv.printing import queues
from printsrv.printing.models import PrintJob


def add_queue(setup: PrintSetup, name: str, printer: str | None, **options: str) -> None:
    with setup.installation.db.transaction() as session:
        queues.add_queue(session, name, printer=printer, ipp_options=options)


def ledger(setup: PrintSetup) -> list[AccountTrx]:
    with setup.installation.db.read() as session:
        return list(session.scalars(select(AccountTrx).order_by(AccountTrx.id)))


def output_pages(cups: PrivateCups, queue: str, job: PrintJob) -> int:
    assert job.cups_job_id is not None
    return len(PdfReader(io.BytesIO(cups.read_output_pdf(queue, job.cups_job_id))).pages)


@pytest.fixture
def server(printing_setup: PrintSetup) -> Iterator[LiveServer]:  # noqa: F811
    live = LiveServer(printing_setup.installation).start()
    yield live
    live.stop()


# -- formats ------------------------------------------------------------------------------------


FORMATS = [
    ("doc.pdf", pdf_bytes(3), 3),
    ("notes.txt", "ünïcödé text\n".encode() * 100, 2),
    ("latin.txt", "Grüße\n".encode("latin-1"), 1),
    ("photo.jpg", image_bytes("JPEG"), 1),
    ("shot.png", image_bytes("PNG"), 1),
    ("anim.gif", image_bytes("GIF"), 1),
    ("fax.tiff", image_bytes("TIFF", frames=2), 2),
    ("job.ps", POSTSCRIPT, 2),
]
# LibreOffice takes a second or two a document: once, on one back-end, is enough here
# (tests/unit/documents/test_convert.py converts every office format).
OFFICE = [("letter.docx", docx_bytes(), 1), ("letter.odt", odt_bytes(), 1)]


def test_every_format_is_converted_logged_and_printed(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    require_programs("soffice")
    add_queue(setup, "lab", "capture")
    formats = FORMATS + (
        # One back-end is enough for the slow LibreOffice conversions.
        OFFICE if setup.installation.db.backend == "sqlite" else []
    )
    for name, content, pages in formats:
        response = upload(server.url, setup.auth, name, content, queue="lab")
        assert response.status_code == 200, (name, response.text)
        body = response.json()
        assert body["pages"] == pages, name
        assert body["status"] == "printing", name
        assert body["title"] == name
    jobs = setup.jobs()
    assert len(jobs) == len(formats)
    for job, (name, _, pages) in zip(jobs, formats, strict=True):
        done = setup.wait_job(job.id)
        assert done.state == "completed", (name, done.message)
        assert output_pages(setup.cups, "capture", done) == pages, name
    with setup.installation.db.read() as session:
        uploads = list(session.scalars(select(Document).where(Document.doc_type == "in")))
    assert [d.source_type for d in uploads][:3] == ["application/pdf", "text/plain", "text/plain"]
    store = PdfStore(setup.installation.env.home)
    for document in uploads:
        assert document.pdf_bytes > 0
        assert document.client_address == "127.0.0.1"
        path = store.path_for(document.pdf_sha256)
        assert path.is_file() and sha256_of(path) == document.pdf_sha256


# -- options ------------------------------------------------------------------------------------


def test_the_printer_receives_the_options_asked_for(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    add_queue(setup, "lab", "capture")
    options = {
        "copies": "2",
        "sides": "two-sided-long-edge",
        "print-color-mode": "monochrome",
        "media": "iso_a4_210x297mm",
        "sheet-collate": "collated",
    }
    response = upload(
        server.url, setup.auth, "three.pdf", pdf_bytes(3), queue="lab",
        ipp_options=json.dumps(options),
    )  # fmt: skip
    assert response.status_code == 200, response.text
    job = setup.wait_job(setup.jobs()[0].id)
    assert job.state == "completed"
    env = setup.cups.read_env("capture", job.cups_job_id)
    argv_options = parse_backend_options(env["OPTIONS"])
    assert env["USER"] == "janet"
    assert env["TITLE"] == "three.pdf"
    assert env["COPIES"] == "2"
    for name in ("sides", "print-color-mode", "media", "sheet-collate"):
        assert argv_options[name] == options[name], name
    assert argv_options["Duplex"] == "DuplexNoTumble"
    # 3 pages, duplex, 2 collated copies: each copy gets a blank back on its last sheet.
    assert output_pages(setup.cups, "capture", job) == 8
    assert (job.sides, job.sheets) == (6, 4)


def test_request_options_override_queue_routing_which_overrides_printer_defaults(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    add_queue(
        setup,
        "routed",
        "capture",
        **{"print-color-mode": "monochrome", "media": "iso_a5_148x210mm"},
    )
    response = upload(
        server.url, setup.auth, "a.pdf", pdf_bytes(1), queue="routed",
        ipp_options='{"print-color-mode": "color"}',
    )  # fmt: skip
    assert response.status_code == 200, response.text
    job = setup.wait_job(setup.jobs()[0].id)
    stored = json.loads(job.options)
    assert stored["print-color-mode"] == "color"  # the request beat the queue
    assert stored["media"] == "iso_a5_148x210mm"  # the queue beat the printer's default
    assert stored["sides"] == "one-sided"  # the printer's default
    argv = parse_backend_options(setup.cups.read_env("capture", job.cups_job_id)["OPTIONS"])
    assert argv["print-color-mode"] == "color" and argv["media"] == "iso_a5_148x210mm"


# -- charging and refunds -------------------------------------------------------------------------


def test_a_completed_print_is_charged_once_with_a_linked_row(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    setup.set_cost("capture", "0.10", per_side_duplex="0.08")
    add_queue(setup, "lab", "capture", sides="two-sided-long-edge")
    response = upload(server.url, setup.auth, "a.pdf", pdf_bytes(3), queue="lab")
    # Per copy: one duplex sheet (2 x 0.08) and the odd last page one-sided (0.10).
    assert response.json()["cost"] == "0.260000"
    job = setup.wait_job(setup.jobs()[0].id)
    assert job.state == "completed"
    rows = ledger(setup)
    charges = [r for r in rows if r.trx_type == "PRINT_OUT"]
    assert len(charges) == 1
    assert charges[0].amount == Decimal("-0.26")
    assert charges[0].document_id == job.document_id
    assert job.refund_trx_id is None
    assert setup.balance() == Decimal("9.74")


def test_a_failing_printer_fails_the_job_refunds_and_keeps_the_document(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    setup.set_cost("fail", "0.50")
    add_queue(setup, "broken", "fail")
    response = upload(server.url, setup.auth, "a.pdf", pdf_bytes(2), queue="broken")
    assert response.status_code == 200
    assert response.json()["status"] == "printing"
    assert response.json()["cost"] == "1.000000"
    job = setup.wait_job(setup.jobs()[0].id)
    assert job.state == "aborted"
    assert FAIL_MESSAGE in job.message
    charge, refund = (r for r in ledger(setup) if r.trx_type == "PRINT_OUT")
    assert refund.reversal_of_id == charge.id and refund.amount == Decimal("1.00")
    assert job.refund_trx_id == refund.id
    assert setup.balance() == Decimal("10.00")
    document_id = response.json()["id"]
    admin = ("admin", "admin-password-0123")
    shown = httpx.get(f"{server.url}/restful/v1/documents/{document_id}", auth=admin).json()
    assert shown["store"] is True
    pdf = httpx.get(f"{server.url}/restful/v1/documents/{document_id}/pdf", auth=admin)
    assert pdf.status_code == 200 and len(PdfReader(io.BytesIO(pdf.content)).pages) == 2


def test_cupsd_down_fails_the_print_at_once_and_refunds(
    printing_setup: PrintSetup,  # noqa: F811
) -> None:
    setup = printing_setup
    own = PrivateCups(prefix="printsrv-down-").start()
    try:
        own.add_queue("gone", "null")
        set_config(setup.installation, {"cups.server": own.server})
        setup.sync()
        setup.set_cost("gone", "0.25")
        add_queue(setup, "down", "gone")
        own.stop()  # CUPS goes away after the printers were synced
        server = LiveServer(setup.installation).start()
        try:
            response = upload(server.url, setup.auth, "a.pdf", pdf_bytes(1), queue="down")
        finally:
            server.stop()
    finally:
        own.close()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "failed"
    assert "unavailable" in body["error"] and body["cost"] == "0.000000"
    (job,) = setup.jobs()
    assert job.state == "failed" and job.refund_trx_id is not None
    assert setup.balance() == Decimal("10.00")
    with setup.installation.db.read() as session:
        kinds = sorted(d.doc_type for d in session.scalars(select(Document)))
    assert kinds == ["in", "print"]  # the document stays, and so does the attempt


def test_a_stuck_job_is_cancelled_and_refunded_after_the_job_timeout(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    setup.cups.add_queue("paused", "null")
    setup.cups.set_enabled("paused", False)  # accepts jobs, keeps them pending
    try:
        setup.sync()
        setup.set_cost("paused", "0.30")
        set_config_live(setup.installation, {"print.job.timeout-secs": "1"})
        add_queue(setup, "slow", "paused")
        response = upload(server.url, setup.auth, "a.pdf", pdf_bytes(1), queue="slow")
        assert response.json()["status"] == "printing"
        job = setup.wait_job(setup.jobs()[0].id, timeout=15)
    finally:
        setup.cups.remove_queue("paused")
    assert job.state == "canceled"
    assert "cancelled" in job.message
    assert setup.balance() == Decimal("10.00")


def test_402_when_the_balance_does_not_cover_the_print(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    setup.set_balance("0.05")
    setup.set_cost("capture", "0.10")
    add_queue(setup, "lab", "capture")
    response = upload(server.url, setup.auth, "a.pdf", pdf_bytes(1), queue="lab")
    assert response.status_code == 402
    assert response.json()["succes"] is False
    assert "costs 0.100000" in response.json()["error"]
    assert setup.jobs() == []
    assert setup.balance() == Decimal("0.05")
    with setup.installation.db.read() as session:
        assert session.scalars(select(Document)).all() == []
    assert not list((setup.installation.env.home / "documents").rglob("*.pdf"))


# -- the inbox ----------------------------------------------------------------------------------


def test_webservice_holds_and_release_prints_with_the_asked_options(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    setup.set_cost("capture", "0.10")
    held = upload(
        server.url, setup.auth, "held.pdf", pdf_bytes(2), ext_id="ref-1",
        ipp_options='{"copies": "2"}',
    )  # fmt: skip
    assert held.status_code == 200, held.text
    assert held.json() == {
        "id": held.json()["id"],
        "ext_id": "ref-1",
        "title": "held.pdf",
        "pages": 2,
        "pages_color": 0,
        "pages_grayscale": 2,
        "queue": "webservice",
        "status": "held",
        "cost": "0.000000",
    }
    assert setup.jobs() == [] and setup.balance() == Decimal("10.00")
    document_id = held.json()["id"]
    released = httpx.post(
        f"{server.url}/restful/v1/documents/{document_id}/print",
        auth=setup.auth,
        data={"printer": "capture", "ipp_options": '{"sides": "two-sided-long-edge"}'},
    )
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "printing"
    assert released.json()["cost"] == "0.400000"  # 2 pages x 2 copies x 0.10
    job = setup.wait_job(setup.jobs()[0].id)
    argv = parse_backend_options(setup.cups.read_env("capture", job.cups_job_id)["OPTIONS"])
    assert argv["sides"] == "two-sided-long-edge"
    assert setup.cups.read_env("capture", job.cups_job_id)["COPIES"] == "2"
    assert json.loads(job.options)["copies"] == "2"
    assert setup.balance() == Decimal("9.60")


def test_release_refusals(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    document_id = upload(server.url, setup.auth, "a.pdf", pdf_bytes(1)).json()["id"]
    url = f"{server.url}/restful/v1/documents/{document_id}/print"
    assert httpx.post(url, auth=setup.auth, data={"printer": "nope"}).status_code == 404
    assert httpx.post(url, auth=setup.auth).status_code == 400
    bad = httpx.post(url, auth=setup.auth, data={"printer": "capture", "ipp_options": '{"x": "1"}'})
    assert bad.status_code == 400 and "'x'" in bad.json()["error"]
    missing = f"{server.url}/restful/v1/documents/{document_id + 100}/print"
    assert httpx.post(missing, auth=setup.auth, data={"printer": "capture"}).status_code == 404
    assert httpx.post(url, auth=("janet", "wrong"), data={"printer": "capture"}).status_code == 401
    set_config_live(setup.installation, {"release.hold-hours": "1"})
    with setup.installation.db.transaction() as session:
        document = session.get(Document, document_id)
        assert document is not None
        document.created_at = document.created_at - timedelta(hours=2)
    expired = httpx.post(url, auth=setup.auth, data={"printer": "capture"})
    assert expired.status_code == 409 and "expired" in expired.json()["error"]
    assert setup.jobs() == []

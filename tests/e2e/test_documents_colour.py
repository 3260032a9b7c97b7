"""Per-page colour pricing over a real socket, against a private cupsd whose printers default
to colour (the Generic PDF PPD's ColorModel is ``color``): black-and-white pages cost the
monochrome price unless the job asks for colour, and the receipt shows the page counts."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from colour_support import colour_pdf
from printing_support import (
    ADMIN,
    PrintSetup,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    upload,
)
from sqlalchemy import select
from support import LiveServer, require_programs

from financial.schema import AccountTrx
from printsrv.documents import convert
from printsrv.documents.convert import ConversionFailed
from printsrv.documents.models import Document
from printsrv.people import users
from printsrv.printing import printers, queues
from printsrv.printing.printers import info_from_row

PRINTER = "colour-laser"
MONO = "0.30"
COLOUR = "1.20"
TEXT = ("The lorem ipsum of a plain text file.\n" * 20).encode()
MIXED = colour_pdf("text", "red-text", "text")  # colour on page 2 of 3


@pytest.fixture
def setup(printing_setup: PrintSetup) -> Iterator[PrintSetup]:  # noqa: F811
    require_programs("gs")
    cups = printing_setup.cups
    # What makes the case: a printer that prints colour unless told otherwise.
    cups.add_queue(PRINTER, "capture")
    cups._lpadmin("-p", PRINTER, "-o", "print-color-mode-default=color")
    try:
        printing_setup.sync()
        printing_setup.set_cost(PRINTER, MONO, per_side_color=COLOUR)
        with printing_setup.installation.db.transaction() as session:
            queues.add_queue(session, "lab", printer=PRINTER)
            info = info_from_row(printers.get_printer(session, PRINTER))
        assert info.default_options()["print-color-mode"] == "color"
        assert {"color", "monochrome"} <= set(info.print_color_mode_supported)
        yield printing_setup
    finally:
        cups.remove_queue(PRINTER)


@pytest.fixture
def server(setup: PrintSetup) -> Iterator[LiveServer]:
    live = LiveServer(setup.installation).start()
    yield live
    live.stop()


def charges(setup: PrintSetup) -> list[Decimal]:
    with setup.installation.db.read() as session:
        rows = session.scalars(
            select(AccountTrx).where(AccountTrx.trx_type == "PRINT_OUT").order_by(AccountTrx.id)
        )
        return [-row.amount for row in rows]


def release(server: LiveServer, setup: PrintSetup, document_id: int, **options: str) -> dict:
    data = {"printer": PRINTER}
    if options:
        data["ipp_options"] = str(options).replace("'", '"')
    response = httpx.post(
        f"{server.url}/restful/v1/documents/{document_id}/print", auth=setup.auth, data=data
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_a_text_file_released_without_a_colour_option_costs_the_monochrome_price(
    setup: PrintSetup, server: LiveServer
) -> None:
    held = upload(server.url, setup.auth, "lorem-ipsum.txt", TEXT)
    assert held.status_code == 200, held.text
    body = held.json()
    assert (body["pages"], body["pages_color"], body["pages_grayscale"]) == (1, 0, 1)
    printed = release(server, setup, body["id"])
    assert printed["status"] == "printing"
    assert printed["cost"] == "0.300000"  # not 1.200000: the page has no colour
    assert (printed["pages_color"], printed["pages_grayscale"]) == (0, 1)
    assert charges(setup) == [Decimal("0.30")]
    assert setup.balance() == Decimal("9.70")
    job = setup.wait_job(setup.jobs()[0].id)
    assert job.state == "completed"


def test_a_mixed_document_is_charged_page_by_page(setup: PrintSetup, server: LiveServer) -> None:
    response = upload(server.url, setup.auth, "mixed.pdf", MIXED, queue="lab")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["pages"], body["pages_color"], body["pages_grayscale"]) == (3, 1, 2)
    assert body["cost"] == "1.800000"  # 0.30 + 1.20 + 0.30
    # Two copies, duplex: the default prices apply to two-sided sheets too (simple model).
    again = upload(
        server.url, setup.auth, "mixed.pdf", MIXED, queue="lab",
        ipp_options='{"copies": "2", "page-ranges": "1,3"}',
    )  # fmt: skip
    assert again.json()["cost"] == "1.200000"  # pages 1 and 3 only, both grey, 2 copies
    assert charges(setup) == [Decimal("1.80"), Decimal("1.20")]
    assert setup.balance() == Decimal("7.00")
    with setup.installation.db.read() as session:
        stored = {
            (d.doc_type, d.page_colors, d.pages_color, d.pages_grayscale)
            for d in session.scalars(select(Document))
        }
    assert stored == {("in", "GCG", 1, 2), ("print", "GCG", 1, 2)}


def test_an_explicit_colour_mode_is_priced_as_asked_for_every_page(
    setup: PrintSetup, server: LiveServer
) -> None:
    # SavaPage's rule: colour asked, every page at the colour price; monochrome asked, every
    # page at the monochrome price, whatever the pages hold.
    colour = upload(
        server.url, setup.auth, "bw.txt", TEXT, queue="lab",
        ipp_options='{"print-color-mode": "color"}',
    )  # fmt: skip
    assert colour.json()["cost"] == "1.200000"
    mono = upload(
        server.url, setup.auth, "mixed.pdf", MIXED, queue="lab",
        ipp_options='{"print-color-mode": "monochrome"}',
    )  # fmt: skip
    assert mono.json()["cost"] == "0.900000"
    held = upload(server.url, setup.auth, "mixed.pdf", MIXED).json()
    assert release(server, setup, held["id"], **{"print-color-mode": "color"})["cost"] == (
        "3.600000"
    )
    assert charges(setup) == [Decimal("1.20"), Decimal("0.90"), Decimal("3.60")]


def test_bad_input_changes_nothing(setup: PrintSetup, server: LiveServer) -> None:
    bad = upload(
        server.url, setup.auth, "mixed.pdf", MIXED, queue="lab",
        ipp_options='{"print-color-mode": "sepia"}',
    )  # fmt: skip
    assert bad.status_code == 400 and "print-color-mode" in bad.json()["error"]
    broken = upload(server.url, setup.auth, "broken.pdf", b"%PDF-1.4\nno pages here", queue="lab")
    assert broken.status_code == 415
    assert charges(setup) == [] and setup.balance() == Decimal("10.00")
    with setup.installation.db.read() as session:
        assert session.scalars(select(Document)).all() == []


def test_when_detection_fails_every_page_costs_colour(
    setup: PrintSetup, server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(pdf: object, *, name: str, **kwargs: object) -> None:
        raise ConversionFailed(name, "colour detection (Ghostscript) took longer than 60 s")

    monkeypatch.setattr(convert, "detect_colours_sync", fails)
    response = upload(server.url, setup.auth, "bw.txt", TEXT, queue="lab")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["pages_color"], body["pages_grayscale"]) == (None, None)
    assert body["cost"] == "1.200000"  # the price before detection, never an undercharge


def test_the_document_log_shows_the_page_counts(setup: PrintSetup, server: LiveServer) -> None:
    printed = upload(server.url, setup.auth, "mixed.pdf", MIXED, queue="lab").json()
    held = upload(server.url, setup.auth, "bw.txt", TEXT).json()
    rows = httpx.get(f"{server.url}/restful/v1/documents", params={"limit": 10}, auth=ADMIN).json()
    counts = {
        (row["type"], row["title"]): (row["pages_color"], row["pages_grayscale"]) for row in rows
    }
    assert counts == {
        ("in", "mixed.pdf"): (1, 2),
        ("print", "mixed.pdf"): (1, 2),
        ("in", "bw.txt"): (0, 1),
    }
    for row in rows:  # every field of the contract is still there
        assert {"id", "ext_id", "type", "title", "created", "store"} <= row.keys()
    one = httpx.get(f"{server.url}/restful/v1/documents/{printed['id']}", auth=ADMIN).json()
    assert (one["pages_color"], one["pages_grayscale"]) == (1, 2)
    one = httpx.get(f"{server.url}/restful/v1/documents/{held['id']}", auth=ADMIN).json()
    assert (one["pages_color"], one["pages_grayscale"]) == (0, 1)


def test_the_web_app_lists_the_page_counts_of_a_print(
    setup: PrintSetup, server: LiveServer
) -> None:
    with setup.installation.db.transaction() as session:
        users.set_password(session, setup.user, "page-password")
    assert upload(server.url, setup.auth, "mixed.pdf", MIXED, queue="lab").status_code == 200
    with contextlib.closing(httpx.Client()) as browser:
        login = browser.get(f"{server.url}/user")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)[1]  # type: ignore[index]
        browser.post(
            f"{server.url}/user/login",
            follow_redirects=True,
            data={"username": setup.user, "password": "page-password", "csrf_token": csrf},
        )
        page = browser.get(f"{server.url}/user").text
    prints = page[page.index('id="prints"') :]
    assert "mixed.pdf" in prints and "1 colour, 2 b/w" in prints

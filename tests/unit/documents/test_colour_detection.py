"""Colour detection of a PDF (printsrv.documents.convert.colour) and per-page colour prices."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from colour_support import PAGES, colour_pdf, expected
from support import require_programs

from printsrv.documents import convert
from printsrv.documents.convert import ConversionFailed, Limits, PageColours, detect_colours
from printsrv.documents.convert import colour as colour_module
from printsrv.documents.convert.colour import detect_colours_sync, provably_grayscale
from printsrv.printing.costs import CostModel, SidePrices, price
from printsrv.printing.intake import _priced_colours

D = Decimal


@pytest.fixture(autouse=True)
def _ghostscript() -> None:
    require_programs("gs")


def detect(tmp_path: Path, *pages: str) -> PageColours:
    pdf = tmp_path / "document.pdf"
    pdf.write_bytes(colour_pdf(*pages))
    return detect_colours_sync(pdf, pages=len(pages), name="document.pdf", limits=Limits())


def test_black_text_gray_and_rich_black_are_grayscale(tmp_path: Path) -> None:
    pages = ("text", "rgb-black-text", "rgb-gray", "rich-black", "gray-image", "empty")
    colours = detect(tmp_path, *pages)
    assert colours.colour == (False,) * 6
    assert (colours.pages_color, colours.pages_grayscale) == (0, 6)


def test_rendering_alone_gets_every_page_kind_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the content scan's short cut, Ghostscript's raster decides every page.
    monkeypatch.setattr(colour_module, "provably_grayscale", lambda pdf, **kwargs: False)
    names = tuple(PAGES)
    assert detect(tmp_path, *names).colour == expected(*names)


def test_colour_on_page_2_of_3(tmp_path: Path) -> None:
    assert detect(tmp_path, "text", "red-text", "text").colour == (False, True, False)
    assert detect(tmp_path, "text", "colour-image", "empty").colour == (False, True, False)


def test_colours_inkcov_gets_wrong_are_colour(tmp_path: Path) -> None:
    # inkcov: brown shows C = M = Y like RGB grey, and 2 pt red type rounds to no ink at all.
    assert detect(tmp_path, "brown", "tiny-red").colour == (True, True)


def test_every_page_kind(tmp_path: Path) -> None:
    names = tuple(PAGES)
    assert detect(tmp_path, *names).colour == expected(*names)


@pytest.mark.parametrize("name", list(PAGES))
def test_the_content_scan_never_calls_a_colour_page_grey(tmp_path: Path, name: str) -> None:
    pdf = tmp_path / "page.pdf"
    pdf.write_bytes(colour_pdf("text", name, "empty"))
    proven = provably_grayscale(pdf, pages=3)
    if expected(name)[0]:
        assert not proven
    # What reportlab writes for black text, RGB grey and empty pages is proven without gs.
    if name in ("text", "rgb-black-text", "rgb-gray", "empty"):
        assert proven


def raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF of ``objects`` (object 1 the catalog), with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< %s /Length %d >>\nstream\n%s\nendstream" % (dictionary, len(data), data)


def test_forms_drawn_over_and_over_are_read_once(tmp_path: Path) -> None:
    # Form k draws form k-1 fifty times: 50**6 grey squares, a few kilobytes of PDF. Read
    # naively, the scan would never end; each form is read once, so it proves the page grey.
    levels = 6
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"]
    first_form = 5
    objects.append(
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /XObject << /F%d %d 0 R >> >> >>" % (levels, first_form + levels)
    )
    objects.append(stream(b"", b"/F%d Do" % levels))
    objects.append(stream(b"/Type /XObject /Subtype /Form /BBox [0 0 1 1]", b"0.5 g 0 0 1 1 re f"))
    for level in range(1, levels + 1):
        objects.append(
            stream(
                b"/Type /XObject /Subtype /Form /BBox [0 0 1 1]"
                b" /Resources << /XObject << /F%d %d 0 R >> >>"
                % (level - 1, first_form + level - 1),
                b" ".join([b"/F%d Do" % (level - 1)] * 50),
            )
        )
    pdf = tmp_path / "forms.pdf"
    pdf.write_bytes(raw_pdf(objects))
    deadline = time.monotonic() + 10
    assert provably_grayscale(pdf, pages=1, deadline=deadline)


def test_black_and_white_text_needs_no_rendering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("Plain text, as users print it.\n" * 200)
    converted = convert.convert_sync(source, tmp_path, name="notes.txt", limits=Limits())

    def no_ghostscript(*args: object, **kwargs: object) -> None:
        raise AssertionError("Ghostscript was started for a provably grey document")

    monkeypatch.setattr(colour_module, "run_reading", no_ghostscript)
    found = detect_colours_sync(
        converted.pdf, pages=converted.pages, name="notes.txt", limits=Limits()
    )
    assert found.colour == (False,) * converted.pages


def test_stored_form_round_trips() -> None:
    colours = PageColours((False, True, False))
    assert colours.to_text() == "GCG"
    assert PageColours.from_text("GCG") == colours
    for bad in (None, "", "GXG", "gcg"):
        assert PageColours.from_text(bad) is None


def test_a_page_count_that_does_not_match_fails(tmp_path: Path) -> None:
    pdf = tmp_path / "document.pdf"
    pdf.write_bytes(colour_pdf("text", "text"))
    with pytest.raises(ConversionFailed, match="rendered 2 of the document's 3 pages"):
        detect_colours_sync(pdf, pages=3, name="document.pdf", limits=Limits())


def test_failure_and_time_out_give_none(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nnot a PDF at all")
    assert asyncio.run(detect_colours(broken, pages=1, name="b.pdf", limits=Limits())) is None
    slow = tmp_path / "slow.pdf"
    slow.write_bytes(colour_pdf(*["colour-image"] * 200))
    with pytest.raises(ConversionFailed, match="took longer"):
        detect_colours_sync(slow, pages=200, name="s.pdf", limits=Limits(timeout=0.05))
    limits = Limits(timeout=0.05)
    assert asyncio.run(detect_colours(slow, pages=200, name="s.pdf", limits=limits)) is None


def test_detection_runs_in_the_conversion_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def spy(pdf: Path, **kwargs: object) -> PageColours:
        seen.append(threading.current_thread().name)
        return detect_colours_sync(pdf, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(convert, "detect_colours_sync", spy)
    pdf = tmp_path / "document.pdf"
    pdf.write_bytes(colour_pdf("text", "red-text"))
    found = asyncio.run(detect_colours(pdf, pages=2, name="d.pdf", limits=Limits(max_parallel=3)))
    assert found == PageColours((False, True))
    assert seen and seen[0].startswith("convert3")


# -- pricing by page --------------------------------------------------------------------------


PRICES = SidePrices(
    one_sided_gray=D("0.10"),
    one_sided_color=D("0.40"),
    two_sided_gray=D("0.08"),
    two_sided_color=D("0.32"),
)
MODEL = CostModel(default=PRICES)
GCG = (False, True, False)


@pytest.mark.parametrize(
    ("options", "colours", "cost"),
    [
        ({}, GCG, "0.600000"),  # 0.10 + 0.40 + 0.10
        ({}, (False,) * 3, "0.300000"),
        ({}, None, "1.200000"),  # not known: every page colour, as before
        ({"print-color-mode": "color"}, GCG, "0.600000"),  # costs.py prices by page; see below
        ({"print-color-mode": "monochrome"}, GCG, "0.300000"),
        ({"print-color-mode": "monochrome"}, None, "0.300000"),
        ({"copies": "2"}, GCG, "1.200000"),
        # duplex: pages 1-2 on one sheet (0.08 + 0.32), page 3 alone one-sided (0.10)
        ({"sides": "two-sided-long-edge"}, GCG, "0.500000"),
        ({"sides": "two-sided-long-edge"}, (True, False, True), "0.800000"),
        # 2-up: side 1 holds pages 1-2 (colour), side 2 page 3 (grey)
        ({"number-up": "2"}, GCG, "0.500000"),
        ({"page-ranges": "1,3"}, GCG, "0.200000"),
        ({"page-ranges": "2-3"}, GCG, "0.500000"),
    ],
)
def test_price_by_page(
    options: dict[str, str], colours: tuple[bool, ...] | None, cost: str
) -> None:
    assert price(3, options, MODEL, page_colors=colours) == D(cost)


def test_price_by_page_uses_the_media_table() -> None:
    a3 = SidePrices.simple(D("0.20"), per_side_color=D("0.80"))
    model = CostModel.per_media(PRICES, {"iso_a3_297x420mm": a3})
    assert price(3, {"media": "iso_a3_297x420mm"}, model, page_colors=GCG) == D("1.200000")


def test_price_needs_one_colour_per_page() -> None:
    with pytest.raises(ValueError, match="2 page colours"):
        price(3, {}, MODEL, page_colors=(True, False))


@pytest.mark.parametrize(
    ("routing", "requested", "by_page"),
    [
        ({}, {}, True),
        ({}, {"print-color-mode": "auto"}, True),
        ({}, {"print-color-mode": "color"}, False),  # SavaPage: colour asked, colour paid
        ({}, {"print-color-mode": "monochrome"}, False),
        ({"print-color-mode": "color"}, {}, False),  # the queue's routing asks too
    ],
)
def test_only_a_job_without_an_explicit_colour_mode_is_priced_by_page(
    routing: dict[str, str], requested: dict[str, str], by_page: bool
) -> None:
    colours = PageColours(GCG)
    assert _priced_colours((routing, requested), 3, colours) == (GCG if by_page else None)
    assert _priced_colours((routing, requested), 3, None) is None
    assert _priced_colours((routing, requested), 4, colours) is None  # stored for another PDF

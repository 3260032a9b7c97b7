"""printsrv.documents.convert: sniffing, each format to PDF, PDF checks, bombs, limits, timeouts."""

from __future__ import annotations

import asyncio
import io
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from printing_support import (
    POSTSCRIPT,
    RTF,
    docx_bytes,
    image_bytes,
    odt_bytes,
    pdf_bytes,
    pptx_like_bytes,
    xlsx_like_bytes,
)
from pypdf import PdfReader, PdfWriter
from support import Overlap, require_programs

from printsrv.documents import convert
from printsrv.documents.convert import ConversionFailed, Limits, convert_sync, inspect_pdf, sniff


def write(tmp_path: Path, content: bytes, name: str = "upload") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def pages_of(path: Path) -> int:
    return len(PdfReader(path).pages)


def text_of(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


# -- sniffing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "key"),
    [
        (pdf_bytes(1), "pdf"),
        (b"\x1b%-12345X@PJL\r\n" + pdf_bytes(1), "pdf"),  # junk before the header is allowed
        (b"hello\nworld\n", "text"),
        ("naïve café\n".encode("latin-1"), "text"),
        (POSTSCRIPT, "postscript"),
        (image_bytes("JPEG"), "jpeg"),
        (image_bytes("PNG"), "png"),
        (image_bytes("GIF"), "gif"),
        (image_bytes("TIFF"), "tiff"),
        (docx_bytes(), "docx"),
        (odt_bytes(), "odt"),
        (xlsx_like_bytes(), "xlsx"),
        (pptx_like_bytes(), "pptx"),
        (RTF, "rtf"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "ole"),
        (bytes(range(256)) * 4, None),  # binary junk
        (b"PK\x03\x04 not really a zip", None),
        (b"", None),
    ],
)
def test_sniff_reads_the_format_from_the_bytes(
    tmp_path: Path, content: bytes, key: str | None
) -> None:
    assert sniff(write(tmp_path, content)) == key


def test_a_name_that_contradicts_the_bytes_is_refused(tmp_path: Path) -> None:
    source = write(tmp_path, image_bytes("PNG"))
    with pytest.raises(ConversionFailed, match="file name says pdf but the content is image/png"):
        convert_sync(source, tmp_path, name="invoice.pdf", limits=Limits())


def test_unknown_content_is_refused_even_with_a_good_name(tmp_path: Path) -> None:
    source = write(tmp_path, bytes(range(256)) * 16)
    with pytest.raises(ConversionFailed, match="not a format printsrv converts"):
        convert_sync(source, tmp_path, name="report.pdf", limits=Limits())


def test_an_unknown_extension_leaves_the_decision_to_the_bytes(tmp_path: Path) -> None:
    source = write(tmp_path, b"plain words\n")
    result = convert_sync(source, tmp_path, name="notes.md", limits=Limits())
    assert result.source_type == "text/plain"
    assert "plain words" in text_of(result.pdf)


# -- PDF --------------------------------------------------------------------------------------


def test_a_pdf_is_kept_as_it_is_and_counted(tmp_path: Path) -> None:
    source = write(tmp_path, pdf_bytes(3))
    result = convert_sync(source, tmp_path, name="a.pdf", limits=Limits())
    assert result.pdf == source
    assert result.pages == 3
    assert result.source_type == "application/pdf"


def test_encrypted_pdf_is_refused(tmp_path: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(ConversionFailed, match="encrypted"):
        inspect_pdf(write(tmp_path, buffer.getvalue()), name="locked.pdf", max_pages=10)


@pytest.mark.parametrize(
    "content",
    [
        b"%PDF-1.7\n this is not a pdf at all",
        pdf_bytes(2)[:300],  # cut off in the middle
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 1 0 R >> endobj\ntrailer << /Root 1 0 R >>",
    ],
)
def test_broken_pdf_is_refused(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(ConversionFailed, match=r"broken|no pages|nests"):
        inspect_pdf(write(tmp_path, content), name="broken.pdf", max_pages=10)


def test_pdf_with_too_many_pages_is_refused(tmp_path: Path) -> None:
    writer = PdfWriter()
    for _ in range(11):
        writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(ConversionFailed, match="11 pages; at most 10"):
        inspect_pdf(write(tmp_path, buffer.getvalue()), name="bomb.pdf", max_pages=10)


@pytest.mark.parametrize("size", [(20_000, 842), (595, 0)])
def test_pdf_with_an_absurd_page_size_is_refused(tmp_path: Path, size: tuple[int, int]) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_blank_page(width=size[0], height=size[1])
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(ConversionFailed, match="page 2 measures"):
        inspect_pdf(write(tmp_path, buffer.getvalue()), name="huge.pdf", max_pages=10)


def test_user_unit_counts_towards_the_page_size(tmp_path: Path) -> None:
    writer = PdfWriter()
    page = writer.add_blank_page(width=1000, height=1000)
    from pypdf.generic import FloatObject, NameObject

    page[NameObject("/UserUnit")] = FloatObject(20)  # 20,000 points a side
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(ConversionFailed, match="20000 x 20000"):
        inspect_pdf(write(tmp_path, buffer.getvalue()), name="unit.pdf", max_pages=10)


# -- text ---------------------------------------------------------------------------------------


def test_utf8_text_is_wrapped_and_paginated(tmp_path: Path) -> None:
    lines = [f"line {n} ünïcödé κόσμε" for n in range(150)] + ["x" * 250]
    source = write(tmp_path, "\n".join(lines).encode("utf-8"))
    result = convert_sync(source, tmp_path, name="long.txt", limits=Limits())
    assert result.pages == 3  # 64 lines a page on A4
    text = text_of(result.pdf)
    assert "line 0 ünïcödé κόσμε" in text
    assert "line 149" in text
    assert "x" * 87 in text and "x" * 88 not in text  # wrapped at the right margin


def test_latin1_text_is_read_as_latin1(tmp_path: Path) -> None:
    source = write(tmp_path, "Grüße aus Köln\n".encode("latin-1"))
    result = convert_sync(source, tmp_path, name="old.txt", limits=Limits())
    assert "Grüße aus Köln" in text_of(result.pdf)


def test_form_feed_starts_a_new_page(tmp_path: Path) -> None:
    source = write(tmp_path, b"first\n\fsecond\nthird\n\f")
    result = convert_sync(source, tmp_path, name="ff.txt", limits=Limits())
    assert result.pages == 2
    assert "second" in PdfReader(result.pdf).pages[1].extract_text()


def test_text_that_would_make_too_many_pages_is_refused(tmp_path: Path) -> None:
    source = write(tmp_path, b"\n" * 100_000)
    with pytest.raises(ConversionFailed, match="more than 5 pages"):
        convert_sync(source, tmp_path, name="bomb.txt", limits=Limits(max_pages=5))


def test_letter_pages_when_configured(tmp_path: Path) -> None:
    source = write(tmp_path, b"hello\n")
    result = convert_sync(source, tmp_path, name="a.txt", limits=Limits(page_size="letter"))
    box = PdfReader(result.pdf).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (612, 792)


# -- images -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "TIFF"])
def test_an_image_becomes_one_fitted_page(tmp_path: Path, fmt: str) -> None:
    source = write(tmp_path, image_bytes(fmt, (3000, 1000)))
    result = convert_sync(source, tmp_path, name=f"photo.{fmt.lower()}", limits=Limits())
    assert result.pages == 1
    page = PdfReader(result.pdf).pages[0]
    assert float(page.mediabox.width) > float(page.mediabox.height)  # landscape for a wide one
    assert len(page.images) == 1


def test_every_tiff_page_becomes_a_pdf_page(tmp_path: Path) -> None:
    source = write(tmp_path, image_bytes("TIFF", frames=3))
    assert convert_sync(source, tmp_path, name="fax.tif", limits=Limits()).pages == 3


def test_transparent_png_is_flattened(tmp_path: Path) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGBA", (50, 50), (255, 0, 0, 0)).save(buffer, "PNG")
    result = convert_sync(
        write(tmp_path, buffer.getvalue()), tmp_path, name="t.png", limits=Limits()
    )
    assert result.pages == 1


def test_image_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    from PIL import Image

    # A 1-bit PNG of 10,000 x 10,000 pixels is a few kilobytes and 100 megapixels.
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, "PNG")
    with pytest.raises(ConversionFailed, match=r"too large|pixels"):
        convert_sync(write(tmp_path, buffer.getvalue()), tmp_path, name="b.png", limits=Limits())


def test_truncated_image_is_refused(tmp_path: Path) -> None:
    content = image_bytes("PNG", (500, 500))[:200]
    with pytest.raises(ConversionFailed, match="broken"):
        convert_sync(write(tmp_path, content), tmp_path, name="cut.png", limits=Limits())


# -- PostScript and external programs ------------------------------------------------------


def test_postscript_is_distilled(tmp_path: Path) -> None:
    result = convert_sync(write(tmp_path, POSTSCRIPT), tmp_path, name="a.ps", limits=Limits())
    assert result.pages == 2
    assert "PostScript page 2" in text_of(result.pdf)


def _gs_processes() -> int:
    found = subprocess.run(["pgrep", "-f", "sDEVICE=pdfwrite"], capture_output=True, check=False)
    return len(found.stdout.split())


def test_a_postscript_loop_is_killed_at_the_time_limit(tmp_path: Path) -> None:
    before = _gs_processes()
    source = write(tmp_path, b"%!PS\n{ 1 pop } loop\n")
    started = time.monotonic()
    with pytest.raises(ConversionFailed, match="Ghostscript took longer than 1 s"):
        convert_sync(source, tmp_path, name="loop.ps", limits=Limits(timeout=1))
    assert time.monotonic() - started < 5
    assert _gs_processes() == before  # the killed process group is gone


def test_conversions_never_exceed_max_parallel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlap = Overlap()

    def slow(source: Path, work_dir: Path, *, name: str, limits: Limits) -> convert.Converted:
        with overlap.during():
            time.sleep(0.15)
        return convert.Converted(source, 1, "application/pdf")

    monkeypatch.setattr(convert, "convert_sync", slow)
    source = write(tmp_path, pdf_bytes(1))

    async def many() -> None:
        limits = Limits(max_parallel=2)
        await asyncio.gather(
            *(convert.convert(source, tmp_path, name="a.pdf", limits=limits) for _ in range(6))
        )

    asyncio.run(many())
    assert overlap.peak == 2


# -- office documents -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "name", "words"),
    [
        (docx_bytes("Hello from a docx"), "letter.docx", "Hello from a docx"),
        (odt_bytes("Hello from an odt"), "letter.odt", "Hello from an odt"),
        (RTF, "memo.rtf", "Hello from RTF"),
    ],
)
def test_office_documents_go_through_libreoffice(
    tmp_path: Path, content: bytes, name: str, words: str
) -> None:
    require_programs("soffice")
    result = convert_sync(write(tmp_path, content), tmp_path, name=name, limits=Limits())
    assert result.pages == 1
    assert words in text_of(result.pdf)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("office-")] == []


class _ConvertTo(BaseHTTPRequestHandler):
    """A stand-in for LibreOffice Online's /lool/convert-to/pdf: it answers a one-page PDF
    naming the multipart field and file it received."""

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        ok = self.path.endswith("/convert-to/pdf") and b'name="data"' in body
        marker = "docx" if b'filename="document.docx"' in body else "unknown"
        payload = pdf_bytes(1, text=f"remote {marker}") if ok else b"bad request"
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def convert_to_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ConvertTo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/lool/convert-to/pdf"
    server.shutdown()
    server.server_close()


def test_office_documents_go_to_a_remote_convert_to_endpoint(
    tmp_path: Path, convert_to_server: str
) -> None:
    limits = Limits(office_url=convert_to_server)
    result = convert_sync(write(tmp_path, docx_bytes()), tmp_path, name="a.docx", limits=limits)
    assert "remote docx" in text_of(result.pdf)


def test_a_remote_converter_error_is_a_conversion_failure(
    tmp_path: Path, convert_to_server: str
) -> None:
    limits = Limits(office_url=convert_to_server.replace("/pdf", "/png"))
    with pytest.raises(ConversionFailed, match="answered HTTP 400"):
        convert_sync(write(tmp_path, docx_bytes()), tmp_path, name="a.docx", limits=limits)


def test_an_unreachable_remote_converter_is_a_conversion_failure(tmp_path: Path) -> None:
    from cupsd import free_port

    limits = Limits(office_url=f"http://127.0.0.1:{free_port()}/cool/convert-to/pdf")
    with pytest.raises(ConversionFailed, match="unreachable"):
        convert_sync(write(tmp_path, odt_bytes()), tmp_path, name="a.odt", limits=limits)


def test_conversion_time_is_measured_per_format_family(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    def count() -> float:
        return (
            REGISTRY.get_sample_value("printsrv_conversion_seconds_count", {"family": "text"})
            or 0.0
        )

    before = count()
    source = tmp_path / "notes.txt"
    source.write_text("hello\n" * 10)
    convert_sync(source, tmp_path, name="notes.txt", limits=Limits())
    assert count() == before + 1

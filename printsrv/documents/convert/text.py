"""Plain text to PDF: UTF-8 (else Windows-1252 / Latin-1), wrapped and paginated."""

from __future__ import annotations

import codecs
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from printsrv.documents.convert.common import (
    MARGIN,
    PAGE_SIZES,
    ConversionFailed,
    Limits,
    check_deadline,
)

__all__ = ["text_to_pdf"]

TEXT_FONT_SIZE: Final = 10.0
TEXT_LEADING: Final = 12.0
TAB_SIZE: Final = 8
DEJAVU_MONO: Final = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")
# C0 controls other than newline become spaces in text output (tabs are expanded first).
_CONTROL_TO_SPACE: Final = {code: " " for code in (*range(32), 127) if code != 10}


def _detect_encoding(path: Path) -> str:
    """utf-8 when the whole file decodes as UTF-8, otherwise Windows-1252 or Latin-1."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1024 * 1024):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        return "utf-8-sig"
    except UnicodeDecodeError:
        pass
    try:
        with open(path, encoding="cp1252") as handle:
            while handle.read(1024 * 1024):
                pass
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


_FONT_LOCK = threading.Lock()


def _text_font(needs_unicode: bool) -> str:
    """Courier for text the standard fonts can show; DejaVu Sans Mono for the rest."""
    if not needs_unicode or not DEJAVU_MONO.is_file():
        return "Courier"
    with _FONT_LOCK:
        if "DejaVuSansMono" not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont("DejaVuSansMono", str(DEJAVU_MONO)))
    return "DejaVuSansMono"


def _wrapped_lines(path: Path, encoding: str, columns: int) -> Iterator[str | None]:
    """The file's lines, tabs expanded and wrapped at ``columns``; None marks a form feed."""
    with open(path, encoding=encoding, errors="replace", newline=None) as handle:
        for raw in handle:
            pieces = raw.rstrip("\n").split("\f")
            for index, piece in enumerate(pieces):
                if index:
                    yield None
                text = piece.expandtabs(TAB_SIZE).translate(_CONTROL_TO_SPACE).rstrip()
                if not text:
                    if len(pieces) == 1:
                        yield ""  # an empty line; a form feed's own line adds none
                    continue
                for start in range(0, len(text), columns):
                    yield text[start : start + columns]


def _needs_unicode(path: Path, encoding: str) -> bool:
    if encoding != "utf-8-sig":
        return False
    with open(path, encoding=encoding) as handle:
        while chunk := handle.read(1024 * 1024):
            try:
                chunk.encode("cp1252")
            except UnicodeEncodeError:
                return True
    return False


def text_to_pdf(source: Path, target: Path, *, name: str, limits: Limits, deadline: float) -> None:
    """Render a text file as a paginated PDF with a monospaced font."""
    encoding = _detect_encoding(source)
    font = _text_font(_needs_unicode(source, encoding))
    width, height = PAGE_SIZES[limits.page_size]
    # Monospaced fonts advance 0.6 em per character (Courier and DejaVu Sans Mono alike).
    columns = max(1, int((width - 2 * MARGIN) / (0.6 * TEXT_FONT_SIZE)))
    rows = max(1, int((height - 2 * MARGIN) / TEXT_LEADING))
    pdf = canvas.Canvas(str(target), pagesize=(width, height), pageCompression=1)
    pdf.setTitle(name)
    pdf.setCreator("printsrv")
    pages = 0
    text = None
    used = rows  # the first line starts a page

    for line in _wrapped_lines(source, encoding, columns):
        if line is None:  # form feed: the next line starts a new page
            used = rows
            continue
        if used >= rows:
            if text is not None:
                pdf.drawText(text)
                pdf.showPage()
            pages += 1
            if pages > limits.max_pages:
                raise ConversionFailed(name, f"the text needs more than {limits.max_pages} pages")
            check_deadline(name, limits, deadline)
            text = pdf.beginText(MARGIN, height - MARGIN - TEXT_FONT_SIZE)
            text.setFont(font, TEXT_FONT_SIZE, TEXT_LEADING)
            used = 0
        assert text is not None
        text.textLine(line)
        used += 1
    if text is None:
        raise ConversionFailed(name, "the text file has no lines")
    pdf.drawText(text)
    pdf.showPage()
    pdf.save()

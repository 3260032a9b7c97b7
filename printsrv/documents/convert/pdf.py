"""Checking a PDF before it is stored or printed: readable, not encrypted, not a bomb."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

from pypdf import PdfReader

from printsrv.documents.convert.common import ConversionFailed

__all__ = ["MAX_PAGE_POINTS", "inspect_pdf"]

# PDF's own limit for a page side (ISO 32000-1, annex C): 14,400 units, 200 inches.
MAX_PAGE_POINTS: Final = 14_400.0

# pypdf reports what it repairs through logging; for a broken file our 415 is the answer.
logging.getLogger("pypdf").setLevel(logging.ERROR)


def inspect_pdf(path: Path, *, name: str, max_pages: int) -> int:
    """Check that a PDF is printable and return its page count.

    Refused (``ConversionFailed``): unreadable or broken, encrypted, no pages, more than
    ``max_pages`` pages, a page with a non-positive or larger-than-200-inch side.
    """
    try:
        with open(path, "rb") as handle:
            # An open file, not a path: given a path, pypdf reads the whole file into memory.
            reader = PdfReader(handle, strict=False)
            return _check_pdf(reader, name=name, max_pages=max_pages)
    except ConversionFailed:
        raise
    except RecursionError:
        raise ConversionFailed(
            name, "the PDF's structure nests too deeply", kind="damaged"
        ) from None
    except Exception as exc:  # pypdf raises many kinds (PdfReadError, KeyError, ValueError ...)
        raise ConversionFailed(
            name, f"the PDF is broken ({type(exc).__name__})", kind="damaged"
        ) from exc


def _check_pdf(reader: PdfReader, *, name: str, max_pages: int) -> int:
    if reader.is_encrypted:
        raise ConversionFailed(name, "the PDF is encrypted; send it without a password")
    pages = len(reader.pages)
    if pages < 1:
        raise ConversionFailed(name, "the PDF has no pages", kind="damaged")
    if pages > max_pages:
        raise ConversionFailed(name, f"it has {pages} pages; at most {max_pages} are allowed")
    for number, page in enumerate(reader.pages, start=1):
        unit = float(page.get("/UserUnit", 1) or 1)
        box = page.mediabox
        width, height = float(box.width) * unit, float(box.height) * unit
        if not (0 < abs(width) <= MAX_PAGE_POINTS and 0 < abs(height) <= MAX_PAGE_POINTS):
            raise ConversionFailed(
                name,
                f"page {number} measures {abs(width):.0f} x {abs(height):.0f} points; "
                f"at most {MAX_PAGE_POINTS:.0f} (200 inches) a side",
            )
    return pages

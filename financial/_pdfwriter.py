"""A PDF file written object by object as it is made (used by financial._pdf).

reportlab keeps every page of a document in memory until ``save()`` and then formats the
whole file as one bytes object, so its memory grows with the page count: about 80 MB for
a 100,000-row report. This writer sends each object to the output as soon as it is
complete and keeps only the byte offset of each object (for the cross-reference table)
and the object number of each page (for the page tree, written last). Objects the pages
refer to before they exist (the page tree, the shared resources, the "of M" page total)
get their numbers up front with :meth:`PdfWriter.reserve` and are written at the end.

Only what the report needs is here: dictionaries written as PDF source text, streams
compressed with Flate, PDF 1.4.
"""

from __future__ import annotations

import os
import zlib
from typing import BinaryIO

__all__ = ["PdfWriter", "pdf_string"]

_HEADER = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"  # the binary comment tells tools the file is binary
_COMPRESSION = 6
_XREF_CHUNK = 1000  # cross-reference lines formatted at a time


class PdfWriter:
    """Write numbered objects to ``out`` in any order; :meth:`close` adds the page tree,
    the cross-reference table and the trailer."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._position = 0
        self._offsets: list[int | None] = []
        self._pages: list[int] = []
        self._write(_HEADER)

    def reserve(self) -> int:
        """A new object number, for an object written later."""
        self._offsets.append(None)
        return len(self._offsets)

    def write(self, number: int, body: str) -> None:
        """Write object ``number`` (from :meth:`reserve`) with ``body``, PDF source text."""
        self._begin(number)
        self._write(f"{body}\nendobj\n".encode("latin-1"))

    def write_stream(self, number: int, data: bytes, entries: str = "") -> None:
        """Write object ``number`` as a Flate-compressed stream of ``data``; ``entries``
        are further dictionary entries (``/Type /XObject ...``)."""
        packed = zlib.compress(data, _COMPRESSION)
        self._begin(number)
        head = f"<< {entries} /Filter /FlateDecode /Length {len(packed)} >>\nstream\n"
        self._write(head.encode("latin-1"))
        self._write(packed)
        self._write(b"\nendstream\nendobj\n")

    def add_page(self, content: bytes, *, parent: int, resources: int, size: str) -> None:
        """Write one page with its content stream; the page tree ``parent`` comes at the end."""
        stream = self.reserve()
        self.write_stream(stream, content)
        page = self.reserve()
        self.write(
            page,
            f"<< /Type /Page /Parent {parent} 0 R /MediaBox [0 0 {size}] "
            f"/Resources {resources} 0 R /Contents {stream} 0 R >>",
        )
        self._pages.append(page)

    @property
    def page_count(self) -> int:
        """The pages written so far."""
        return len(self._pages)

    def close(self, *, pages: int, catalog: int, info: int) -> None:
        """Write the page tree as object ``pages``, the catalog, the cross-reference table
        and the trailer. Every reserved object must have been written by now."""
        kids = " ".join(f"{page} 0 R" for page in self._pages)
        self.write(pages, f"<< /Type /Pages /Kids [{kids}] /Count {len(self._pages)} >>")
        self.write(catalog, f"<< /Type /Catalog /Pages {pages} 0 R >>")
        missing = [number for number, offset in enumerate(self._offsets, 1) if offset is None]
        if missing:
            raise RuntimeError(f"PDF objects {missing} were reserved but never written")
        start = self._position
        self._write(f"xref\n0 {len(self._offsets) + 1}\n0000000000 65535 f \n".encode("latin-1"))
        for first in range(0, len(self._offsets), _XREF_CHUNK):
            chunk = self._offsets[first : first + _XREF_CHUNK]
            self._write("".join(f"{offset:010d} 00000 n \n" for offset in chunk).encode("latin-1"))
        identifier = os.urandom(16).hex()
        trailer = (
            f"trailer\n<< /Size {len(self._offsets) + 1} /Root {catalog} 0 R /Info {info} 0 R "
            f"/ID [<{identifier}> <{identifier}>] >>\nstartxref\n{start}\n%%EOF\n"
        )
        self._write(trailer.encode("latin-1"))

    def _begin(self, number: int) -> None:
        if self._offsets[number - 1] is not None:
            raise RuntimeError(f"PDF object {number} was written twice")
        self._offsets[number - 1] = self._position
        self._write(f"{number} 0 obj\n".encode("latin-1"))

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._position += len(data)


def pdf_string(text: str) -> str:
    """``text`` as a PDF text string (document information): a literal when ASCII, else
    UTF-16 with a byte-order mark, in hex."""
    if text.isascii() and text.isprintable():
        return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"
    return "<feff" + text.encode("utf-16-be").hex() + ">"

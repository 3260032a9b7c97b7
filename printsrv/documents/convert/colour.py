"""Which pages of a PDF print in colour: rendered by Ghostscript, judged pixel by pixel.

Each page is rendered to RGB at ``DETECTION_DPI`` (``gs -sDEVICE=ppmraw``, streamed through a
pipe, never held whole in memory) and is a colour page when any pixel's chroma, the largest
minus the smallest of its R, G and B, exceeds ``CHROMA_THRESHOLD``.

Why not ``gs -sDEVICE=inkcov``: it reports, per page, the share of the page's area where each
of C, M, Y and K is non-zero, not how much of each ink. Measured with Ghostscript 10.00 on
pages made with reportlab, it cannot tell grey from colour:

    page                                    inkcov C M Y K               chroma here
    black text, DeviceGray                  0      0      0      0.0014  0    grey
    black text, RGB (0, 0, 0)               0.0004 0.0004 0.0004 0.0004  0    grey
    grey rectangle, RGB (0.5, 0.5, 0.5)     0.3198 0.3198 0.3198 0.3198  0    grey
    brown rectangle, RGB (0.6, 0.4, 0.2)    0.3198 0.3198 0.3198 0.3198  153  colour
    rich black, CMYK (0.6, 0.4, 0.4, 1)     0.0203 0.0203 0.0203 0.0203  0    grey
    red text in 2 pt type                   0      0      0      0       255  colour

RGB grey and RGB black come out as equal C, M and Y (the ICC conversion makes rich black), so
"C, M and Y all zero" calls every RGB document colour, and "C = M = Y" calls brown grey; and
a small coloured mark rounds to 0.00000. Rendering to RGB and measuring chroma gets every row
right at about inkcov's cost (both render at 72 dpi: 6-15 ms a page here, depending on load,
plus 60-170 ms of Ghostscript start-up per document; bench/printing.py measures both).

Most uploads need no rendering at all: ``provably_grayscale`` reads each page's content
streams (pypdf, no interpretation) and, when every colour a page sets is a grey (``g``,
``rg`` with R = G = B, ``k`` with C = M = Y = 0), it draws no image that is not grey or a
mask, uses no shading, pattern, colour space operator, inline image, Type 3 font or annotation
appearance, and its forms obey the same rules, the page is grayscale without Ghostscript.
Anything it does not understand sends the whole document to Ghostscript. It calls a page
grey only when it paints nothing but greys, which rendering finds too (pure K renders with
chroma 4-5), so it saves time without changing an answer: a one-page upload is spared
Ghostscript's start-up, and text files converted by printsrv and plain black-and-white PDFs
take 1-3 ms a page.

The threshold: JPEG-compressed grey images and Ghostscript's conversion of CMYK rich black
measured chroma 0, a near-grey RGB (0.50, 0.50, 0.52) 5; pure colours are 255 and light tints
such as a pale yellow highlighter (255, 255, 200) 55. 16 of 255 (6 %) keeps noise and
near-neutral greys grey while a single pixel of a real colour makes a page colour: charging a
page that is visibly colour at the monochrome price is the error to avoid.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from PIL import Image, ImageChops
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, StreamObject

from printsrv.documents.convert.common import ConversionFailed, Limits
from printsrv.documents.convert.external import run_reading

__all__ = [
    "CHROMA_THRESHOLD",
    "DETECTION_DPI",
    "PageColours",
    "detect_colours_sync",
    "page_is_colour",
    "provably_grayscale",
]

DETECTION_DPI: Final = 72
CHROMA_THRESHOLD: Final = 16
# One strip of a page raster analysed at a time: a 200 x 200 inch page is 600 MB at 72 dpi.
_STRIP_BYTES: Final = 4 * 1024 * 1024
# Content stream scanning (``provably_grayscale``). An operator is a token that follows a
# delimiter; a name ("/g") is not one. Strings are not skipped: a word in a string that looks
# like an operator can only make a page look unproven (rendered), never grey.
_NUMBER: Final = rb"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
_COLOUR_OPERATOR: Final = re.compile(
    rb"((?:" + _NUMBER + rb"\s+){0,4})(?<![^\s\[\]()<>{}])(rg|RG|k|K|g|G)(?=[\s\[\]()<>{}/%]|$)"
)
# Operators that may paint colour this scan does not follow: colour spaces and their colours,
# shadings, inline images, Type 3 glyph procedures.
_UNPROVEN_OPERATOR: Final = re.compile(
    rb"(?<![^\s\[\]()<>{}])(cs|CS|sc|SC|scn|SCN|sh|BI|d0|d1)(?=[\s\[\]()<>{}/%]|$)"
)
_DO: Final = re.compile(rb"/([^\s\[\]()<>{}/%]+)\s+Do(?=[\s\[\]()<>{}/%]|$)")
_ANY_DO: Final = re.compile(rb"(?<![^\s\[\]()<>{}])Do(?=[\s\[\]()<>{}/%]|$)")
_MAX_FORM_DEPTH: Final = 8
_MAX_CONTENT_BYTES: Final = 64 * 1024 * 1024  # read by one document's scan, forms included
_COLOUR: Final = "C"
_GREY: Final = "G"


@dataclass(frozen=True)
class PageColours:
    """Per page of a document, whether it prints in colour.

    Attributes:
        colour: one flag per page, in page order; True for a colour page.
    """

    colour: tuple[bool, ...]

    @property
    def pages_color(self) -> int:
        """How many pages have colour."""
        return sum(self.colour)

    @property
    def pages_grayscale(self) -> int:
        """How many pages are black, white and grey only."""
        return len(self.colour) - self.pages_color

    def to_text(self) -> str:
        """The flags as stored in ``document.page_colors``: ``C`` or ``G`` per page."""
        return "".join(_COLOUR if flag else _GREY for flag in self.colour)

    @classmethod
    def from_text(cls, text: str | None) -> PageColours | None:
        """Read ``to_text``'s form back; None for None (never detected) or a malformed value."""
        if not text or set(text) - {_COLOUR, _GREY}:
            return None
        return cls(tuple(ch == _COLOUR for ch in text))


def page_is_colour(image: Image.Image) -> bool:
    """Whether any pixel of an RGB image has a chroma above ``CHROMA_THRESHOLD``."""
    red, green, blue = image.split()
    chroma = ImageChops.lighter(
        ImageChops.lighter(ImageChops.difference(red, green), ImageChops.difference(green, blue)),
        ImageChops.difference(red, blue),
    )
    extrema = chroma.getextrema()
    assert isinstance(extrema[1], int)
    return extrema[1] > CHROMA_THRESHOLD


def _grey_operands(operator: bytes, operands: bytes) -> bool:
    """Whether a colour operator with these operands (the numbers before it) sets a grey."""
    numbers = [float(n) for n in operands.split()]
    if operator in (b"g", b"G"):
        return len(numbers) >= 1
    if operator in (b"rg", b"RG"):
        return len(numbers) >= 3 and numbers[-3] == numbers[-2] == numbers[-1]
    return len(numbers) >= 4 and numbers[-4] == numbers[-3] == numbers[-2] == 0  # k, K


def _data(contents: object) -> bytes | None:
    """The decoded bytes of a page's /Contents (a stream or an array of them)."""
    contents = getattr(contents, "get_object", lambda: contents)()
    if isinstance(contents, StreamObject):
        return contents.get_data()
    if isinstance(contents, ArrayObject):
        return b"\n".join(part.get_object().get_data() for part in contents)
    return None


def _grey_image(image: DictionaryObject) -> bool:
    """A mask (painted in the fill colour, which the scan checks) or a grey image."""
    if image.get("/ImageMask"):
        return True
    space = image.get("/ColorSpace")
    space = space.get_object() if space is not None else None
    if space == NameObject("/DeviceGray"):
        return True
    # An ICC-based space with one component is a grey.
    return (
        isinstance(space, ArrayObject)
        and len(space) == 2
        and space[0] == "/ICCBased"
        and space[1].get_object().get("/N") == 1
    )


class _Unproven(Exception):
    """The scan gives up: too much work, or out of time."""


@dataclass
class _Scan:
    """One document's scan: what it may still read, until when, and the forms it proved.

    The byte budget and the memo keep a PDF whose forms draw each other many times over (a
    few kilobytes that expand exponentially) from costing more than rendering it would.
    """

    deadline: float
    budget: int = _MAX_CONTENT_BYTES
    proven: set[tuple[int, int, int]] = field(default_factory=set)

    def grey_content(self, data: bytes, resources: object, depth: int) -> bool:
        """Whether a content stream (with its resources) provably paints only greys."""
        self.budget -= len(data)
        if self.budget < 0 or time.monotonic() > self.deadline:
            raise _Unproven
        if _UNPROVEN_OPERATOR.search(data):
            return False
        for match in _COLOUR_OPERATOR.finditer(data):
            if not _grey_operands(match.group(2), match.group(1)):
                return False
        resources = resources.get_object() if resources is not None else DictionaryObject()
        if not isinstance(resources, DictionaryObject):
            return False
        fonts = resources.get("/Font")
        for font in fonts.get_object().values() if fonts is not None else ():
            if font.get_object().get("/Subtype") == "/Type3":
                return False
        names = _DO.findall(data)
        if len(names) != len(_ANY_DO.findall(data)):
            return False  # a Do whose operand this scan did not read
        xobjects = resources.get("/XObject")
        xobjects = xobjects.get_object() if xobjects is not None else DictionaryObject()
        for name in names:
            xobject = xobjects.get("/" + name.decode("latin-1"))
            xobject = xobject.get_object() if xobject is not None else None
            if not isinstance(xobject, StreamObject):
                return False
            subtype = xobject.get("/Subtype")
            if subtype == "/Image":
                if not _grey_image(xobject):
                    return False
            elif subtype == "/Form" and depth < _MAX_FORM_DEPTH:
                if not self._grey_form(xobject, resources, depth):
                    return False
            else:
                return False
        return True

    def _grey_form(self, form: StreamObject, resources: DictionaryObject, depth: int) -> bool:
        """A form XObject, each one proven once (per resources it inherits, if any)."""
        own = form.get("/Resources")
        reference = form.indirect_reference
        key = None
        if reference is not None:
            key = (reference.idnum, reference.generation, 0 if own is not None else id(resources))
            if key in self.proven:
                return True
        if not self.grey_content(form.get_data(), own if own is not None else resources, depth + 1):
            return False
        if key is not None:
            self.proven.add(key)
        return True


def provably_grayscale(pdf: Path, *, pages: int, deadline: float | None = None) -> bool:
    """Whether every page of ``pdf`` is certainly grayscale by its content streams alone.

    False means "not proven" (colour, or not understood here, or more than
    ``_MAX_CONTENT_BYTES`` to read, or past ``deadline``), never "colour": the caller then
    renders the document. Annotations with appearances count as not proven.
    """
    scan = _Scan(deadline=time.monotonic() + 60 if deadline is None else deadline)
    try:
        with open(pdf, "rb") as handle:
            reader = PdfReader(handle)
            if len(reader.pages) != pages:
                return False
            for page in reader.pages:
                for annotation in page.get("/Annots") or ():
                    annotation = annotation.get_object()
                    if "/AP" in annotation or annotation.get("/Subtype") != "/Link":
                        return False
                contents = page.get("/Contents")
                data = b"" if contents is None else _data(contents)
                if data is None or not scan.grey_content(data, page.get("/Resources"), 0):
                    return False
            return True
    except Exception:  # anything unexpected (a broken object, a filter): let gs decide
        return False


def _header_token(stream: IO[bytes]) -> bytes:
    """The next whitespace-separated token of a PPM header (comments skipped); b"" at EOF."""
    token = b""
    while True:
        byte = stream.read(1)
        if not byte:
            return token
        if byte == b"#":
            while byte not in (b"\n", b""):
                byte = stream.read(1)
            continue
        if byte.isspace():
            if token:
                return token
            continue
        token += byte
        if len(token) > 16:
            raise ValueError("PPM header token too long")


def _read_pages(stream: IO[bytes], name: str) -> list[bool]:
    """Judge each P6 frame Ghostscript writes to ``stream``, one strip of rows at a time."""
    flags: list[bool] = []
    while True:
        magic = _header_token(stream)
        if not magic:
            return flags
        try:
            if magic != b"P6":
                raise ValueError(f"not a PPM frame: {magic[:8]!r}")
            width, height, maxval = (int(_header_token(stream)) for _ in range(3))
        except ValueError as exc:
            raise ConversionFailed(name, f"colour detection read bad output ({exc})") from None
        if width < 1 or height < 1 or maxval != 255:
            raise ConversionFailed(name, "colour detection read a frame it cannot use")
        row_bytes = width * 3
        rows_per_strip = max(1, _STRIP_BYTES // row_bytes)
        colour = False
        row = 0
        while row < height:
            rows = min(rows_per_strip, height - row)
            data = stream.read(rows * row_bytes)
            if len(data) != rows * row_bytes:
                raise ConversionFailed(name, "colour detection output ended inside a page")
            # Once one strip has colour, the rest of the page is only read past.
            if not colour:
                colour = page_is_colour(Image.frombytes("RGB", (width, rows), data))
            row += rows
        flags.append(colour)


def detect_colours_sync(
    pdf: Path, *, pages: int, name: str, limits: Limits, deadline: float | None = None
) -> PageColours:
    """Render every page of ``pdf`` and say which have colour (blocking; for a worker thread).

    ``pages`` is the page count found when the PDF was checked; a different number of
    rendered pages is a failure. Raises ``ConversionFailed`` when Ghostscript is missing,
    fails, or runs past ``deadline`` (default: ``limits.timeout`` from now).
    """
    if deadline is None:
        deadline = time.monotonic() + limits.timeout
    if provably_grayscale(pdf, pages=pages, deadline=deadline):
        return PageColours((False,) * pages)
    gs = shutil.which("gs")
    if gs is None:
        raise ConversionFailed(name, "Ghostscript (gs) is not installed on the server")
    command = [
        gs, "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sstdout=%stderr",
        "-sDEVICE=ppmraw", f"-r{DETECTION_DPI}", "-sOutputFile=-", str(pdf),
    ]  # fmt: skip
    flags = run_reading(
        command,
        lambda stream: _read_pages(stream, name),
        name=name,
        what="colour detection (Ghostscript)",
        limits=limits,
        deadline=deadline,
    )
    if len(flags) != pages:
        raise ConversionFailed(
            name, f"colour detection rendered {len(flags)} of the document's {pages} pages"
        )
    return PageColours(tuple(flags))

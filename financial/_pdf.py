"""PDF layout of the transaction report (used by financial.reports).

The report is drawn row by row onto pages that are written out as soon as they are full
(:class:`~financial._pdfwriter.PdfWriter`), so memory stays bounded by one page of rows
however long the report is. Every row is one line of one height (long texts are clipped
with '...'), so the rows that fit a page are known without laying anything out: a page
holds the table's header row, then as many rows as fit, then the next page starts.

"page N of M" is written in one pass: every page draws "page N of " followed by a PDF
form XObject holding M, and the form is written once, at the end, when M is known.

The look is that of the reportlab platypus version this replaced (same fonts, sizes,
paddings, colours and positions): title, selection and generation time on the first
page, then the table, then the count and sum per transaction type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, BinaryIO

from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit

from financial._pdftext import FONT_RESOURCES, Font, font_dictionary
from financial._pdfwriter import PdfWriter, pdf_string
from financial.money import ZERO

FONT = "Helvetica"
BOLD = "Helvetica-Bold"
SIZE = 7
PADDING = 2
ROW_HEIGHT = SIZE + 2 * PADDING + 1
LEADING = SIZE * 1.2
BASELINE = (ROW_HEIGHT + LEADING) / 2 - SIZE
"""Height of a cell's baseline above its row's bottom (text centred as reportlab tables do)."""
MARGIN = 12 * mm
PAGE = landscape(A4)
TOP = PAGE[1] - MARGIN
BOTTOM = MARGIN + 4 * mm
LEFT = MARGIN
WIDTH = PAGE[0] - 2 * MARGIN
COLUMN_SHARES = (0.14, 0.05, 0.11, 0.07, 0.08, 0.08, 0.25, 0.12, 0.10)
NUMERIC_COLUMNS = (4, 5)
REPEATED_COLUMNS = (1, 2, 3, 7)
"""Columns whose texts repeat from row to row (account type and name, transaction type,
actor): each distinct text is clipped and encoded once."""
CACHED_TEXTS = 4096
HEADER_GREY = 0.827451  # reportlab's colors.lightgrey
STRIPE_GREY = 0.960784  # reportlab's colors.whitesmoke
LINE_WIDTH = 0.5

TITLE_SIZE, TITLE_LEADING, TITLE_AFTER = 18, 22, 6
TEXT_SIZE, TEXT_LEADING = 10, 12
HEADING_SIZE, HEADING_LEADING, HEADING_BEFORE, HEADING_AFTER = 14, 18, 12, 6
TOTALS_SIZE = SIZE + 1
TOTALS_LEADING = TOTALS_SIZE * 1.2
TOTALS_PADDING = (6, 3)  # reportlab tables' default paddings: left and right, top and bottom
TOTALS_ROW = TOTALS_LEADING + 2 * TOTALS_PADDING[1]
TOTALS_COLUMNS = (40 * mm, 25 * mm, 40 * mm)
FOOTER_SIZE = SIZE + 1

Row = tuple[str, Decimal, Sequence[str]]
"""(transaction type, amount, the cells shown) for one ledger row."""


class PdfLayout:
    """The report document: its texts, its columns and how to build it."""

    def __init__(
        self,
        *,
        title: str,
        selection: str,
        generated: str,
        currency: str,
        header: Sequence[str],
    ) -> None:
        self.title = title
        self.selection = selection
        self.generated = generated
        self.currency = currency
        self.header = tuple(header)
        self.col_widths = [share * WIDTH for share in COLUMN_SHARES]

    def build(self, out: BinaryIO, rows: Iterable[Row]) -> None:
        """Lay out ``rows`` and write the PDF to ``out``, page by page."""
        pages = _Pages(out, self.title)
        self._heading(pages)
        table = _Table(pages, self.header, self.col_widths)
        totals: dict[str, list[Any]] = {}
        for trx_type, amount, shown in rows:
            entry = totals.setdefault(trx_type, [0, ZERO])
            entry[0] += 1
            entry[1] += amount
            table.add(shown)
        if not totals:
            table.add(["(no transactions)", *([""] * (len(self.header) - 1))])
        self._totals(pages, totals)
        pages.close()

    def _heading(self, pages: _Pages) -> None:
        title = Font(BOLD, TITLE_SIZE)
        for line in simpleSplit(self.title, BOLD, TITLE_SIZE, WIDTH):
            pages.room(TITLE_LEADING)
            pages.text(title, LEFT + (WIDTH - title.width(line)) / 2, pages.y - TITLE_SIZE, line)
            pages.y -= TITLE_LEADING
        pages.y -= TITLE_AFTER
        normal = Font(FONT, TEXT_SIZE)
        for paragraph in (f"Selection: {self.selection}", f"Generated: {self.generated}"):
            for line in simpleSplit(paragraph, FONT, TEXT_SIZE, WIDTH):
                pages.room(TEXT_LEADING)
                pages.text(normal, LEFT, pages.y - TEXT_SIZE, line)
                pages.y -= TEXT_LEADING
        pages.y -= 4 * mm

    def _totals(self, pages: _Pages, totals: dict[str, list[Any]]) -> None:
        data = [["Transaction type", "Count", f"Total ({self.currency})"]]
        count, amount = 0, ZERO
        for trx_type in sorted(totals):
            rows, total = totals[trx_type]
            data.append([trx_type, str(rows), format(total, "f")])
            count += rows
            amount += total
        data.append(["All", str(count), format(amount, "f")])
        pages.y -= 6 * mm + HEADING_BEFORE
        if not pages.fits(HEADING_LEADING + HEADING_AFTER + TOTALS_ROW * len(data)):
            pages.new_page()
        heading = Font(BOLD, HEADING_SIZE)
        pages.text(heading, LEFT, pages.y - HEADING_SIZE, "Totals per transaction type")
        pages.y -= HEADING_LEADING + HEADING_AFTER
        normal, bold = Font(FONT, TOTALS_SIZE), Font(BOLD, TOTALS_SIZE)
        right = sum(TOTALS_COLUMNS)
        for number, cells in enumerate(data):
            font = bold if number in (0, len(data) - 1) else normal
            bottom = pages.y - TOTALS_ROW
            baseline = bottom + TOTALS_PADDING[1] + TOTALS_LEADING - TOTALS_SIZE
            pages.text(font, LEFT + TOTALS_PADDING[0], baseline, cells[0])
            edge = LEFT + TOTALS_COLUMNS[0]
            for cell, width in zip(cells[1:], TOTALS_COLUMNS[1:], strict=True):
                edge += width
                pages.text(font, edge - TOTALS_PADDING[0] - font.width(cell), baseline, cell)
            if number == 0:
                pages.line(LEFT, LEFT + right, bottom)
            if number == len(data) - 1:
                pages.line(LEFT, LEFT + right, pages.y)
            pages.y = bottom


class _Pages:
    """The document being written: the page being drawn, and the pages already written.

    Drawing appends PDF operators to the current page: shapes to one list, text to
    another (one text object per page, painted over the shapes). A full page is
    compressed and written with its footer; nothing of it stays in memory.
    """

    def __init__(self, out: BinaryIO, title: str) -> None:
        self._writer = writer = PdfWriter(out)
        self._title = title
        self._tree = writer.reserve()
        self._resources = writer.reserve()
        self._total = writer.reserve()
        self._catalog = writer.reserve()
        self._info = writer.reserve()
        self._fonts = {}
        for name in FONT_RESOURCES:
            number = writer.reserve()
            writer.write(number, font_dictionary(name))
            self._fonts[name] = number
        self._footer_font = Font(FONT, FOOTER_SIZE)
        self._footer_x = PAGE[0] - MARGIN - self._footer_font.width("page 000000 of 000000")
        self._footer_title = self._footer_font.clip(title, PAGE[0] / 2)
        self._shapes: list[str] = []
        self._text: list[str] = []
        self._font: Font | None = None
        self.number = 1
        self.y = TOP

    def fits(self, height: float) -> bool:
        """Whether ``height`` points are left above the bottom margin."""
        return self.y - height >= BOTTOM - 1e-6

    def room(self, height: float) -> None:
        """Start a new page unless ``height`` points are left on this one."""
        if not self.fits(height):
            self.new_page()

    def new_page(self) -> None:
        """Write the current page and start the next, drawing from the top."""
        self._write_page()
        self.number += 1
        self.y = TOP

    def text(self, font: Font, x: float, y: float, text: str) -> None:
        """Show ``text`` with its baseline starting at (x, y)."""
        if not text:
            return
        if font is not self._font:
            self._text.append(font.select)
            self._font = font
        self._text.append(f"1 0 0 1 {x:.2f} {y:.2f} Tm {font.show(text)}")

    def raw_text(self, font: Font, operators: list[str]) -> None:
        """Append text operators already made for ``font`` (the table's fast path)."""
        if font is not self._font:
            self._text.append(font.select)
            self._font = font
        self._text.extend(operators)

    def fill(self, x: float, y: float, width: float, height: float, grey: float) -> None:
        """Fill a rectangle in a shade of grey."""
        self._shapes.append(f"{grey:g} g {x:.2f} {y:.2f} {width:.2f} {height:.2f} re f\n")

    def line(self, x1: float, x2: float, y: float) -> None:
        """A black horizontal line."""
        self._shapes.append(f"0 G {LINE_WIDTH:g} w {x1:.2f} {y:.2f} m {x2:.2f} {y:.2f} l S\n")

    def close(self) -> None:
        """Write the last page, the page total and the document's structure."""
        self._write_page()
        writer = self._writer
        total = (
            self._footer_font.select + f"1 0 0 1 0 0 Tm {self._footer_font.show(str(self.number))}"
        )
        writer.write_stream(
            self._total,
            f"BT {total}ET".encode("latin-1"),
            "/Type /XObject /Subtype /Form /BBox [0 -8 100 16] "
            f"/Resources << /Font << {FONT_RESOURCES[FONT]} {self._fonts[FONT]} 0 R >> >>",
        )
        fonts = " ".join(
            f"{FONT_RESOURCES[name]} {number} 0 R" for name, number in self._fonts.items()
        )
        writer.write(
            self._resources,
            f"<< /Font << {fonts} >> /XObject << /PageTotal {self._total} 0 R >> "
            "/ProcSet [/PDF /Text] >>",
        )
        created = datetime.now(UTC).strftime("D:%Y%m%d%H%M%SZ")
        writer.write(
            self._info,
            f"<< /Title {pdf_string(self._title)} /Author (printsrv) "
            f"/Creator (printsrv financial report) /Producer (printsrv) "
            f"/CreationDate ({created}) >>",
        )
        writer.close(pages=self._tree, catalog=self._catalog, info=self._info)

    def _write_page(self) -> None:
        total = self._footer()
        content = "".join(["q\n", *self._shapes, "Q\nBT 0 g\n", *self._text, "\nET\n", total])
        self._writer.add_page(
            content.encode("latin-1"),
            parent=self._tree,
            resources=self._resources,
            size=f"{PAGE[0]:.4f} {PAGE[1]:.4f}",
        )
        self._shapes = []
        self._text = []
        self._font = None

    def _footer(self) -> str:
        """Draw the footer; return the operators that draw the page total, to come last
        (after the page's text, so that text extraction reads "page N of M" in order)."""
        font = self._footer_font
        self.text(font, MARGIN, MARGIN, self._footer_title)
        words = f"page {self.number} of "
        self.text(font, self._footer_x, MARGIN, words)
        x = self._footer_x + font.width(words)
        return f"q 1 0 0 1 {x:.2f} {MARGIN:.2f} cm /PageTotal Do Q\n"


class _Table:
    """The rows of the report, a header row at the top of every page, every other row shaded.

    Cells are clipped to their column; the two amount columns are right-aligned.
    """

    def __init__(self, pages: _Pages, header: Sequence[str], col_widths: Sequence[float]) -> None:
        self._pages = pages
        self._header = list(header)
        self._font = Font(FONT, SIZE)
        self._bold = Font(BOLD, SIZE)
        self._clip_widths = [width - 2 * PADDING for width in col_widths]
        edges = [LEFT]
        for width in col_widths:
            edges.append(edges[-1] + width)
        self._lefts = [edge + PADDING for edge in edges[:-1]]
        self._rights = [edge - PADDING for edge in edges[1:]]
        self._numeric = [column in NUMERIC_COLUMNS for column in range(len(col_widths))]
        self._repeated: list[dict[str, str] | None] = [
            {} if column in REPEATED_COLUMNS else None for column in range(len(col_widths))
        ]
        self._width = edges[-1] - LEFT
        self._left_moves = [f"1 0 0 1 {left:.2f} " for left in self._lefts]
        self._capacity = 0  # rows left on this page; 0 until the header is drawn
        self._index = 0

    def add(self, cells: Sequence[str]) -> None:
        """Draw one row, after a page break and the header row when this page is full."""
        pages = self._pages
        if self._capacity == 0:
            if self._index or self._rows_fitting() < 1:
                pages.new_page()
            self._capacity = self._rows_fitting()
            self._index = 0
            self._draw_header()
        if self._index % 2:
            pages.fill(LEFT, pages.y - ROW_HEIGHT, self._width, ROW_HEIGHT, STRIPE_GREY)
        self._draw(self._font, cells, pages.y - ROW_HEIGHT)
        pages.y -= ROW_HEIGHT
        self._index += 1
        self._capacity -= 1

    def _rows_fitting(self) -> int:
        """Rows that fit below the header row in the space left on the page."""
        return max(int((self._pages.y - BOTTOM - ROW_HEIGHT) // ROW_HEIGHT), 0)

    def _draw_header(self) -> None:
        pages = self._pages
        bottom = pages.y - ROW_HEIGHT
        pages.fill(LEFT, bottom, self._width, ROW_HEIGHT, HEADER_GREY)
        pages.line(LEFT, LEFT + self._width, bottom)
        self._draw(self._bold, self._header, bottom)
        pages.y = bottom

    def _draw(self, font: Font, cells: Sequence[str], bottom: float) -> None:
        at = f"{bottom + BASELINE:.2f} Tm "
        operators: list[str] = []
        for column, text in enumerate(cells):
            if not text:
                continue
            cache = self._repeated[column] if font is self._font else None
            if cache is not None:
                shown = cache.get(text)
                if shown is None:
                    if len(cache) >= CACHED_TEXTS:
                        cache.clear()  # bounded: names and types repeat, a few thousand at most
                    shown = cache[text] = font.fit(text, self._clip_widths[column])[0]
                operators.append(self._left_moves[column] + at)
                operators.append(shown)
                continue
            shown, width = font.fit(text, self._clip_widths[column])
            if self._numeric[column]:
                operators.append(f"1 0 0 1 {self._rights[column] - width:.2f} {at}")
            else:
                operators.append(self._left_moves[column] + at)
            operators.append(shown)
        self._pages.raw_text(font, operators)

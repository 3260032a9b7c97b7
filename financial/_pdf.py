"""PDF layout of the transaction report with reportlab platypus (used by financial.reports).

Memory stays bounded by one page of rows: :class:`_PagedTable` is a flowable that pulls
rows from an iterator only as the page being laid out needs them and hands platypus one
``Table`` per page, each starting with the header row. "page N of M" is written in one
pass: every page draws "page N of " followed by a PDF form XObject holding M, and the
form is defined once, when the document is saved and M is known.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from financial.money import ZERO

FONT = "Helvetica"
BOLD = "Helvetica-Bold"
SIZE = 7
PADDING = 2
ROW_HEIGHT = SIZE + 2 * PADDING + 1
MARGIN = 12 * mm
PAGE = landscape(A4)
PAGE_TOTAL_FORM = "pageTotal"
COLUMN_SHARES = (0.14, 0.05, 0.11, 0.07, 0.08, 0.08, 0.25, 0.12, 0.10)
NUMERIC_COLUMNS = (4, 5)

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
        width = PAGE[0] - 2 * MARGIN
        self.col_widths = [share * width for share in COLUMN_SHARES]

    def build(self, out: BinaryIO, rows: Iterable[Row]) -> None:
        """Lay out ``rows`` and write the PDF to ``out``."""
        totals: dict[str, list[Any]] = {}

        def cells() -> Iterator[Sequence[str]]:
            for trx_type, amount, shown in rows:
                entry = totals.setdefault(trx_type, [0, ZERO])
                entry[0] += 1
                entry[1] += amount
                yield shown

        doc = BaseDocTemplate(
            out,
            pagesize=PAGE,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=MARGIN + 4 * mm,
            title=self.title,
            author="printsrv",
            creator="printsrv financial report",
        )
        frame = Frame(
            doc.leftMargin,
            doc.bottomMargin,
            doc.width,
            doc.height,
            id="body",
            leftPadding=0,
            rightPadding=0,
            topPadding=0,
            bottomPadding=0,
        )
        doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=self._footer)])
        styles = getSampleStyleSheet()
        story: list[Flowable] = [
            Paragraph(escape(self.title), styles["Title"]),
            Paragraph(escape(f"Selection: {self.selection}"), styles["Normal"]),
            Paragraph(escape(f"Generated: {self.generated}"), styles["Normal"]),
            Spacer(1, 4 * mm),
            _PagedTable(cells(), self.header, self.col_widths),
            Spacer(1, 6 * mm),
            Paragraph("Totals per transaction type", styles["Heading2"]),
            _TotalsTable(totals, self.currency),
        ]
        doc.build(story, canvasmaker=_NumberedCanvas)

    def _footer(self, canvas: Canvas, _doc: BaseDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(FONT, SIZE + 1)
        y = MARGIN
        canvas.drawString(MARGIN, y, _clip(self.title, PAGE[0] / 2, FONT, SIZE + 1))
        text = f"page {canvas.getPageNumber()} of "
        x = PAGE[0] - MARGIN - stringWidth("page 000000 of 000000", FONT, SIZE + 1)
        canvas.drawString(x, y, text)
        canvas.translate(x + stringWidth(text, FONT, SIZE + 1), y)
        canvas.doForm(PAGE_TOTAL_FORM)
        canvas.restoreState()


class _NumberedCanvas(Canvas):
    """A canvas that defines the page-total form once every page has been drawn."""

    def save(self) -> None:
        total = self.getPageNumber() - 1  # the page counter is already past the last page
        self.beginForm(PAGE_TOTAL_FORM, lowerx=0, lowery=-SIZE, upperx=100, uppery=2 * SIZE)
        self.setFont(FONT, SIZE + 1)
        self.drawString(0, 0, str(total))
        self.endForm()
        super().save()


class _PagedTable(Flowable):
    """A table over an iterator of rows, laid out one page-sized ``Table`` at a time.

    Rows have one fixed height (long texts are clipped), so the rows that fit the space
    left on a page are known before they are drawn, and each page gets its own ``Table``
    that begins with the header row. At most one page of rows is held at a time.
    """

    def __init__(
        self, rows: Iterator[Sequence[str]], header: Sequence[str], col_widths: Sequence[float]
    ) -> None:
        super().__init__()
        self._rows = rows
        self._header = list(header)
        self._col_widths = list(col_widths)
        self._pending: list[list[str]] = []
        self._exhausted = False
        self._width = sum(col_widths)

    def _capacity(self, avail_height: float) -> int:
        return max(int((avail_height - ROW_HEIGHT) // ROW_HEIGHT), 0)

    def _fill(self, count: int) -> None:
        while len(self._pending) < count and not self._exhausted:
            try:
                shown = next(self._rows)
            except StopIteration:
                self._exhausted = True
                break
            self._pending.append(
                [
                    _clip(text, width - 2 * PADDING, FONT, SIZE)
                    for text, width in zip(shown, self._col_widths, strict=True)
                ]
            )

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        """Take the whole remainder if it fits, else more than is available (to split)."""
        capacity = self._capacity(availHeight)
        self._fill(capacity + 1)
        if len(self._pending) <= capacity:
            return self._width, ROW_HEIGHT * (1 + max(len(self._pending), 1))
        return self._width, availHeight + ROW_HEIGHT

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:
        """Hand over a page of rows as a ``Table``; the rest continues on the next page.

        Only called when more rows are left than fit, so the page is full after it.
        """
        capacity = self._capacity(availHeight)
        if capacity < 1:
            return []
        self._fill(capacity + 1)
        page, self._pending = self._pending[:capacity], self._pending[capacity:]
        return [self._table(page), PageBreak(), self]

    def draw(self) -> None:
        """Draw the last rows (all that is left)."""
        table = self._table(self._pending)
        table.wrapOn(self.canv, self._width, ROW_HEIGHT * (2 + len(self._pending)))
        table.drawOn(self.canv, 0, 0)
        self._pending = []

    def _table(self, page: list[list[str]]) -> Table:
        data: list[list[str]] = [self._header, *page]
        if not page:
            data.append(["(no transactions)", *([""] * (len(self._header) - 1))])
        style = [
            ("FONT", (0, 0), (-1, -1), FONT, SIZE),
            ("FONT", (0, 0), (-1, 0), BOLD, SIZE),
            ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
            ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.whitesmoke]),
            ("TOPPADDING", (0, 0), (-1, -1), PADDING),
            ("BOTTOMPADDING", (0, 0), (-1, -1), PADDING),
            ("LEFTPADDING", (0, 0), (-1, -1), PADDING),
            ("RIGHTPADDING", (0, 0), (-1, -1), PADDING),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]
        for column in NUMERIC_COLUMNS:
            style.append(("ALIGN", (column, 0), (column, -1), "RIGHT"))
        return Table(
            data,
            colWidths=self._col_widths,
            rowHeights=[ROW_HEIGHT] * len(data),
            style=TableStyle(style),
            repeatRows=1,
        )


class _TotalsTable(Flowable):
    """The count and sum per transaction type, built when laid out (after the rows)."""

    def __init__(self, totals: dict[str, list[Any]], currency: str) -> None:
        super().__init__()
        self._totals = totals
        self._currency = currency
        self._table: Table | None = None

    def _made(self) -> Table:
        if self._table is None:
            data = [["Transaction type", "Count", f"Total ({self._currency})"]]
            count, amount = 0, ZERO
            for trx_type in sorted(self._totals):
                rows, total = self._totals[trx_type]
                data.append([trx_type, str(rows), format(total, "f")])
                count += rows
                amount += total
            data.append(["All", str(count), format(amount, "f")])
            self._table = Table(
                data,
                colWidths=[40 * mm, 25 * mm, 40 * mm],
                hAlign="LEFT",
                style=TableStyle(
                    [
                        ("FONT", (0, 0), (-1, -1), FONT, SIZE + 1),
                        ("FONT", (0, 0), (-1, 0), BOLD, SIZE + 1),
                        ("FONT", (0, -1), (-1, -1), BOLD, SIZE + 1),
                        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
                        ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.black),
                        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                    ]
                ),
            )
        return self._table

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        """Size of the totals table."""
        return self._made().wrap(availWidth, availHeight)

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:
        """Split like the table itself."""
        return self._made().split(availWidth, availHeight)

    def draw(self) -> None:
        """Draw the totals table."""
        self._made().drawOn(self.canv, 0, 0)


def _clip(text: str, width: float, font: str, size: float) -> str:
    """Return ``text`` shortened with '...' to fit ``width`` points."""
    if len(text) * size <= width:  # no glyph is wider than 1 em
        return text
    if stringWidth(text, font, size) <= width:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if stringWidth(text[:middle] + "...", font, size) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low] + "..."

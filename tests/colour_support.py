"""PDFs for colour detection and per-page colour pricing tests, drawn with reportlab.

Each page is described by a word (``PAGES``); ``colour_pdf("text", "red-text", "text")`` is
a three-page document whose second page has colour.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

_Draw = Callable[[canvas.Canvas], None]


def _text(pdf: canvas.Canvas) -> None:
    # reportlab's default fill is DeviceGray black, as most text-to-PDF tools write it.
    for line in range(40):
        pdf.drawString(72, 780 - 16 * line, f"Black text only, line {line + 1} of the page.")


def _rgb_black_text(pdf: canvas.Canvas) -> None:
    pdf.setFillColorRGB(0, 0, 0)
    pdf.drawString(72, 780, "Black text written as RGB (0, 0, 0)")


def _rgb_gray(pdf: canvas.Canvas) -> None:
    pdf.setFillColorRGB(0.5, 0.5, 0.5)
    pdf.rect(72, 300, 400, 400, fill=1, stroke=0)
    pdf.setFillColorRGB(0.9, 0.9, 0.9)
    pdf.rect(72, 72, 400, 200, fill=1, stroke=0)


def _rich_black(pdf: canvas.Canvas) -> None:
    pdf.setFillColorCMYK(0.6, 0.4, 0.4, 1)
    pdf.rect(72, 72, 200, 200, fill=1, stroke=0)


def _gray_image(pdf: canvas.Canvas) -> None:
    image = Image.linear_gradient("L").convert("RGB")  # grey pixels stored as RGB
    pdf.drawImage(ImageReader(image), 72, 72, width=300, height=300)


def _red_text(pdf: canvas.Canvas) -> None:
    _text(pdf)
    pdf.setFillColorRGB(0.8, 0, 0)
    pdf.drawString(72, 100, "One red line among black ones")


def _colour_image(pdf: canvas.Canvas) -> None:
    image = Image.new("RGB", (40, 30), (30, 120, 200))
    pdf.drawImage(ImageReader(image), 72, 400, width=200, height=150)


def _brown(pdf: canvas.Canvas) -> None:
    # inkcov reports this exactly as it reports RGB grey (C = M = Y over the same area).
    pdf.setFillColorRGB(0.6, 0.4, 0.2)
    pdf.rect(72, 72, 400, 400, fill=1, stroke=0)


def _tiny_red(pdf: canvas.Canvas) -> None:
    # 2 pt type: inkcov rounds its coverage to 0.00000.
    pdf.setFillColorRGB(1, 0, 0)
    pdf.setFont("Helvetica", 2)
    pdf.drawString(300, 400, "tiny red")


def _empty(pdf: canvas.Canvas) -> None:
    del pdf


PAGES: dict[str, tuple[_Draw, bool]] = {
    "text": (_text, False),
    "rgb-black-text": (_rgb_black_text, False),
    "rgb-gray": (_rgb_gray, False),
    "rich-black": (_rich_black, False),
    "gray-image": (_gray_image, False),
    "empty": (_empty, False),
    "red-text": (_red_text, True),
    "colour-image": (_colour_image, True),
    "brown": (_brown, True),
    "tiny-red": (_tiny_red, True),
}


def colour_pdf(*pages: str) -> bytes:
    """A PDF with one page per name in ``PAGES``, in order."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    for name in pages:
        PAGES[name][0](pdf)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def expected(*pages: str) -> tuple[bool, ...]:
    """Whether each named page has colour."""
    return tuple(PAGES[name][1] for name in pages)

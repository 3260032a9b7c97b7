"""Text in the report's PDF: reportlab's metrics and encoding of the standard fonts.

The report uses PDF's standard Type 1 fonts, which every viewer has, so nothing is
embedded. reportlab supplies what they need: the glyph widths (to clip and right-align)
and the mapping of Unicode text to the fonts' byte codes (``unicode2T1``): Latin text in
Helvetica's WinAnsi encoding, Greek and mathematical signs in Symbol, and every other
character as ZapfDingbats' black square, as a reportlab canvas draws them.

Most cells are printable ASCII; those take a fast path (one width table, three escapes)
that gives the same widths and bytes as the general one.
"""

from __future__ import annotations

from reportlab.lib.rl_accel import escapePDF, unicode2T1
from reportlab.pdfbase.pdfmetrics import getFont, stringWidth

__all__ = ["FONT_RESOURCES", "Font", "clip", "font_dictionary"]

FONT_RESOURCES = {
    "Helvetica": "/F1",
    "Helvetica-Bold": "/F2",
    "Symbol": "/F3",
    "ZapfDingbats": "/F4",
}
"""The standard fonts a page may use, by their resource names in the page's font dictionary."""

ELLIPSIS = "..."


def font_dictionary(name: str) -> str:
    """The PDF font dictionary of the standard font ``name``."""
    # Symbol and ZapfDingbats have their own built-in encodings.
    encoding = "/Encoding /WinAnsiEncoding " if name.startswith("Helvetica") else ""
    return f"<< /Type /Font /Subtype /Type1 /BaseFont /{name} {encoding}>>"


class Font:
    """A standard font at one size: text widths, clipping and the operators that show text."""

    def __init__(self, name: str, size: float) -> None:
        self.name = name
        self.size = size
        self._face = getFont(name)
        self._widths: list[int] = list(self._face.widths)
        self._faces = [self._face, *self._face.substitutionFonts]
        self.select = f"{FONT_RESOURCES[name]} {size:g} Tf "
        """The operator that makes this font current."""

    def width(self, text: str) -> float:
        """The width of ``text`` in points, as reportlab's ``stringWidth`` measures it."""
        if text.isascii() and text.isprintable():
            return sum(map(self._widths.__getitem__, text.encode("ascii"))) * 0.001 * self.size
        return stringWidth(text, self.name, self.size)

    def clip(self, text: str, width: float) -> str:
        """``text`` shortened with '...' to fit ``width`` points."""
        return clip(text, width, self)

    def fit(self, text: str, width: float) -> tuple[str, float]:
        """The operators that show ``text`` clipped to ``width`` points, and the width of
        what they show (measured once: this is the table's fast path)."""
        if text.isascii() and text.isprintable():
            shown = sum(map(self._widths.__getitem__, text.encode("ascii"))) * 0.001 * self.size
            if shown > width:
                text = clip(text, width, self)
                shown = self.width(text)
            escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            return "(" + escaped + ")Tj ", shown
        text = clip(text, width, self)
        return self.show(text), self.width(text)

    def show(self, text: str) -> str:
        """Operators that show ``text`` at the text position, this font being current; a
        switch to a substitution font is switched back at the end."""
        if text.isascii() and text.isprintable():
            return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")Tj "
        parts: list[str] = []
        current = self._face
        for face, data in unicode2T1(text, self._faces):
            if face is not current:
                parts.append(f"{FONT_RESOURCES[face.fontName]} {self.size:g} Tf ")
                current = face
            parts.append(f"({escapePDF(data)})Tj ")
        if current is not self._face:
            parts.append(self.select)
        return "".join(parts)


def clip(text: str, width: float, font: Font) -> str:
    """``text`` shortened with '...' to fit ``width`` points in ``font``."""
    if len(text) * font.size <= width:  # no glyph is wider than 1 em
        return text
    if font.width(text) <= width:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if font.width(text[:middle] + ELLIPSIS) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low] + ELLIPSIS

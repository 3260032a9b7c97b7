"""What every converter shares: the error, the limits, the result, page geometry."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from printsrv.errors import InvalidInput

__all__ = [
    "MARGIN",
    "PAGE_SIZES",
    "ConversionFailed",
    "Converted",
    "FailureKind",
    "Limits",
    "check_deadline",
]

PAGE_SIZES: Final[dict[str, tuple[float, float]]] = {
    "a4": (595.2756, 841.8898),
    "letter": (612.0, 792.0),
}
MARGIN: Final = 36.0  # half an inch

# Why a conversion failed: the input is of a kind printsrv does not convert (or is refused by a
# limit), the input is damaged, or the conversion ran out of time.
FailureKind = Literal["unsupported", "damaged", "timeout"]


class ConversionFailed(InvalidInput):
    """A document cannot be turned into a printable PDF: unknown or lying format, encrypted or
    broken PDF, too many pages, pages too large, a converter that failed or ran out of time.

    ``document`` names the document (its title); the REST adapter answers 415 to a print
    upload. ``kind`` says why (``FailureKind``), so that a service that answers each reason
    differently (``documents.convert_to``: 422 for damaged input, 504 for a time-out) can tell
    them apart without reading messages.
    """

    def __init__(self, document: str, detail: str, *, kind: FailureKind = "unsupported") -> None:
        super().__init__(f"Cannot convert '{document}' to PDF: {detail}")
        self.document = document
        self.detail = detail
        self.kind: FailureKind = kind


@dataclass(frozen=True)
class Limits:
    """What one conversion may do, from the config properties ``convert.*``.

    Attributes:
        timeout: seconds a conversion may take once started.
        max_pages: most pages the resulting PDF may have.
        page_size: ``a4`` or ``letter``, for pages made from text and images.
        office_url: a LibreOffice Online / Collabora ``convert-to`` URL, or "" for soffice.
        max_parallel: most conversions at once in this process.
        max_output_bytes: largest PDF an external converter may write.
    """

    timeout: float = 60.0
    max_pages: int = 2000
    page_size: str = "a4"
    office_url: str = ""
    max_parallel: int = 2
    max_output_bytes: int = 1024**3


@dataclass(frozen=True)
class Converted:
    """The PDF a conversion produced.

    Attributes:
        pdf: the PDF file; for a PDF upload, the uploaded file itself.
        pages: its page count.
        source_type: the MIME type found by sniffing the input.
    """

    pdf: Path
    pages: int
    source_type: str


def check_deadline(name: str, limits: Limits, deadline: float) -> None:
    """Raise ``ConversionFailed`` once the monotonic ``deadline`` has passed."""
    if time.monotonic() > deadline:
        raise ConversionFailed(
            name, f"conversion took longer than {limits.timeout:.0f} s", kind="timeout"
        )

"""Which formats printsrv converts, and which one a file is: sniffing its bytes.

The file name only has a say when it names a known format, and then it must agree with the
bytes ("invoice.pdf" holding a PNG is refused, so a caller learns it sent the wrong file).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from printsrv.documents.convert.common import ConversionFailed

__all__ = ["FORMATS", "Format", "check_name", "sniff"]


@dataclass(frozen=True)
class Format:
    """A format printsrv can convert: its MIME type, family and usual file extensions."""

    key: str
    mime: str
    family: str
    extensions: tuple[str, ...]


FORMATS: Final[dict[str, Format]] = {
    f.key: f
    for f in (
        Format("pdf", "application/pdf", "pdf", (".pdf",)),
        Format("text", "text/plain", "text", (".txt", ".text", ".log", ".asc")),
        Format("postscript", "application/postscript", "postscript", (".ps", ".eps")),
        Format("jpeg", "image/jpeg", "image", (".jpg", ".jpeg", ".jpe", ".jfif")),
        Format("png", "image/png", "image", (".png",)),
        Format("gif", "image/gif", "image", (".gif",)),
        Format("tiff", "image/tiff", "image", (".tif", ".tiff")),
        Format("odt", "application/vnd.oasis.opendocument.text", "office", (".odt",)),
        Format("ods", "application/vnd.oasis.opendocument.spreadsheet", "office", (".ods",)),
        Format("odp", "application/vnd.oasis.opendocument.presentation", "office", (".odp",)),
        Format(
            "docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "office",
            (".docx",),
        ),
        Format(
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "office",
            (".xlsx",),
        ),
        Format(
            "pptx",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "office",
            (".pptx",),
        ),
        Format("ole", "application/x-ole-storage", "office", (".doc", ".xls", ".ppt")),
        Format("rtf", "application/rtf", "office", (".rtf",)),
    )
}
_FAMILY_OF_EXTENSION: Final[dict[str, str]] = {
    ext: f.family for f in FORMATS.values() for ext in f.extensions
}
_ODF_MIMETYPES: Final[dict[bytes, str]] = {
    FORMATS[k].mime.encode(): k for k in ("odt", "ods", "odp")
}
_OOXML_PARTS: Final[tuple[tuple[str, str], ...]] = (
    ("word/", "docx"),
    ("xl/", "xlsx"),
    ("ppt/", "pptx"),
)
_SNIFF_BYTES: Final = 64 * 1024
# Control characters a text file may hold: tab, newline, vertical tab, form feed, return, ESC.
_TEXT_CONTROLS: Final = frozenset(b"\t\n\x0b\x0c\r\x1b")


def _looks_like_text(sample: bytes) -> bool:
    if not sample or b"\x00" in sample:
        return False
    controls = sum(1 for b in sample if (b < 32 and b not in _TEXT_CONTROLS) or b == 127)
    return controls * 100 <= len(sample)  # at most 1 %


def _zip_format(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "mimetype" in names:
                mimetype = archive.read("mimetype")[:100].strip()
                return _ODF_MIMETYPES.get(mimetype)
            if "[Content_Types].xml" in names:
                for prefix, key in _OOXML_PARTS:
                    if any(name.startswith(prefix) for name in names):
                        return key
    except (zipfile.BadZipFile, OSError, KeyError, RuntimeError, NotImplementedError):
        return None
    return None


def sniff(path: Path) -> str | None:
    """The format key of a file, from its bytes; None when printsrv cannot convert it."""
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head:
        return None
    # PDF allows junk before the header (PJL, mail headers); readers look in the first 1 KiB.
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith((b"%!PS", b"\x04%!PS", b"\xc5\xd0\xd3\xc6")):
        return "postscript"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"PK\x03\x04"):
        return _zip_format(path)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if _looks_like_text(head):
        return "text"
    return None


def check_name(name: str, key: str | None) -> None:
    """Refuse a file whose name claims a format its bytes contradict."""
    family = _FAMILY_OF_EXTENSION.get(Path(name).suffix.lower())
    if key is None:
        claimed = f" (the name says {family})" if family else ""
        raise ConversionFailed(name, f"its content is not a format printsrv converts{claimed}")
    actual = FORMATS[key]
    if family is not None and family != actual.family:
        raise ConversionFailed(
            name, f"the file name says {family} but the content is {actual.mime}"
        )

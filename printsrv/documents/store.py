"""The content-addressed PDF store under ``PRINTSRV_HOME/documents``.

A file's name is the SHA-256 of its bytes, sharded by the first two byte pairs
(``documents/ab/cd/abcd....pdf``), so no path ever comes from an upload and two copies of one
PDF are stored once. Work files (uploads on their way in, conversions) live in
``PRINTSRV_HOME/tmp`` on the same file system, so moving them into the store is one rename.
The document log (`printsrv.documents.log`) names the stored files and decides when they go.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

__all__ = ["PdfStore", "StoredPdf", "sha256_of"]

_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")
_CHUNK: Final = 1024 * 1024


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredPdf:
    """A PDF in the store.

    Attributes:
        sha256: its digest, which is also its name.
        size: its size in bytes.
        path: where it is.
        created: True when this call put the bytes there (no earlier document had them).
    """

    sha256: str
    size: int
    path: Path
    created: bool


class PdfStore:
    """The content-addressed PDF store of one installation, and its work directory."""

    def __init__(self, home: Path) -> None:
        self.root = home / "documents"
        self.tmp = home / "tmp"

    def __repr__(self) -> str:
        return f"PdfStore({str(self.root)!r})"

    def path_for(self, sha256: str) -> Path:
        """Where the PDF with this digest is (or would be) kept."""
        if not _SHA256_RE.fullmatch(sha256):
            raise ValueError(f"{sha256!r} is not a lower-case hex SHA-256")
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}.pdf"

    def work_dir(self) -> Path:
        """A fresh private directory under tmp/ for one request's files; the caller removes it."""
        self.tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.tmp / f"work-{secrets.token_hex(12)}"
        path.mkdir(mode=0o700)
        return path

    def put(self, pdf: Path, sha256: str | None = None) -> StoredPdf:
        """Move ``pdf`` into the store (it is gone from where it was) and return where it is.

        When the store has these bytes already, ``pdf`` is deleted and the kept copy's time
        is refreshed, so retention and the orphan sweep see it as new.
        """
        digest = sha256 or sha256_of(pdf)
        target = self.path_for(digest)
        size = pdf.stat().st_size
        if target.exists():
            pdf.unlink()
            os.utime(target)
            return StoredPdf(digest, size, target, created=False)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(pdf, 0o600)
        os.replace(pdf, target)  # atomic: a reader sees the whole file or none
        return StoredPdf(digest, size, target, created=True)

    def has(self, sha256: str) -> bool:
        """Whether the store holds the PDF with this digest."""
        return self.path_for(sha256).is_file()

    def remove(self, sha256: str, *, unless_newer_than: datetime | None = None) -> bool:
        """Delete a stored PDF; keep it if it was written after ``unless_newer_than``.

        Returns whether a file was deleted.
        """
        path = self.path_for(sha256)
        try:
            newer = unless_newer_than is not None and (
                path.stat().st_mtime > unless_newer_than.timestamp()
            )
            if newer:
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def digests(self) -> Iterable[str]:
        """The digests of every PDF in the store."""
        if not self.root.is_dir():
            return
        for path in self.root.glob("??/??/*.pdf"):
            if _SHA256_RE.fullmatch(path.stem):
                yield path.stem

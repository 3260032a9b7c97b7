"""Convert-to: any document printsrv can print, as a PDF, a PNG of one page, or its text.

The service behind ``POST /lool/convert-to/{format}`` (LibreOffice Online's API), and behind
any other caller that has a file and wants it in another form (a job converting a document
of the log). The conversion to PDF is printing's own (``documents.convert``); a PNG is one
page of that PDF rendered by Ghostscript, ``width`` pixels wide; the text is pypdf's
extraction of every page, pages separated by a form feed (as ``pdftotext`` does).

Three doors, one path:

    convert_file   blocking: a source file -> the result file in a directory the caller owns
    convert_path   async: a source file -> the result's bytes, under the cap and time limit
    convert_to     async: receives the input itself (an upload) into a private work
                   directory, then as convert_path; the directory is gone when it returns

The cap and the time limit (``api.convert.*``): at most ``max-parallel`` conversions run at
once in one process (so the whole service runs at most workers x machines x max-parallel);
a conversion above the cap waits its turn. ``timeout-secs`` counts from the call, waiting
included: a call still waiting at the limit is refused as busy (``ConverterBusy``, 503 with
``Retry-After``), one converting at the limit is stopped (``ConversionTimedOut``, 504).

What the converter's refusals become: ``ConversionFailed`` of kind ``damaged`` (a broken
PDF or image, a converter program that failed on the input) is ``DamagedDocument`` (422);
kind ``timeout`` is ``ConversionTimedOut`` (504); the rest (an unknown or lying format, an
encrypted PDF, a limit of ``convert.*``) stays ``ConversionFailed`` (415). A print upload
still answers 415 for all of them: only this service tells them apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from pypdf import PdfReader

from printsrv.documents.convert import ConversionFailed, Limits, convert_sync, sniff
from printsrv.documents.convert.common import check_deadline
from printsrv.documents.convert.external import run_program
from printsrv.documents.convert.pdf import MAX_PAGE_POINTS
from printsrv.documents.store import PdfStore
from printsrv.errors import InvalidInput, PrintsrvError, ServiceUnavailable
from printsrv.platform.threads import in_thread

__all__ = [
    "FORMATS",
    "ConversionTimedOut",
    "ConvertSettings",
    "ConverterBusy",
    "DamagedDocument",
    "Input",
    "Result",
    "Target",
    "convert_file",
    "convert_path",
    "convert_to",
    "input_name",
    "page_geometry",
    "result_name",
]

# What convert-to makes, and the media type it answers with.
FORMATS: Final[dict[str, str]] = {
    "pdf": "application/pdf",
    "png": "image/png",
    "txt": "text/plain; charset=utf-8",
}
DEFAULT_WIDTH: Final = 1024
MAX_WIDTH: Final = 10_000
# A PNG of a page 200 inches tall and 1 inch wide, 1024 pixels wide, would be 200k pixels tall.
MAX_PIXELS: Final = 64_000_000
MIN_DPI: Final = 4.0
# Magic numbers of formats printsrv does not convert, so that a refusal names what it got.
_OTHER_TYPES: Final[tuple[tuple[bytes, str], ...]] = (
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!", "application/vnd.rar"),
    (b"\x7fELF", "application/x-executable"),
    (b"MZ", "application/x-msdownload"),
    (b"BM", "image/bmp"),
    (b"ID3", "audio/mpeg"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"\x1aE\xdf\xa3", "video/webm"),
    (b"SQLite format 3\x00", "application/vnd.sqlite3"),
)


class DamagedDocument(InvalidInput):
    """The input is of a format printsrv converts, but damaged: a broken PDF or image, a
    PostScript or office file its converter fails on."""


class ConversionTimedOut(PrintsrvError):
    """A conversion ran past ``api.convert.timeout-secs`` and was stopped."""


class ConverterBusy(ServiceUnavailable):
    """Every conversion slot stayed taken until ``api.convert.timeout-secs`` passed.

    ``retry_after`` is the seconds a client should wait before trying again.
    """

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Target:
    """What to make: ``format`` (a key of ``FORMATS``); for ``png``, the ``page`` (from 1)
    and the picture's ``width`` in pixels."""

    format: str
    page: int = 1
    width: int = DEFAULT_WIDTH

    @classmethod
    def parse(cls, format: str | None, page: str | None = None, width: str | None = None) -> Target:
        """A target from text (a URL segment, form fields); InvalidInput (400) naming a bad one."""
        key = (format or "").strip().lower()
        if not key:
            raise InvalidInput("Name the format to convert to: pdf, png or txt")
        if key not in FORMATS:
            shown = re.sub(r"[^\w.+-]", "?", key[:20])
            raise InvalidInput(f"Unknown format '{shown}': convert-to makes pdf, png or txt")
        return cls(
            key,
            _whole_number("page", page, 1, 1, 1_000_000),
            _whole_number("width", width, DEFAULT_WIDTH, 1, MAX_WIDTH),
        )


def _whole_number(name: str, text: str | None, default: int, low: int, high: int) -> int:
    if text is None or not text.strip():
        return default
    value = text.strip()
    # isascii: str.isdigit() also takes "²", which int() refuses (a 500, found by fuzzing).
    if not (value.isascii() and value.isdigit()) or len(value) > 9 or not low <= int(value) <= high:
        raise InvalidInput(f"{name} {value[:20]!r} is not a whole number from {low} to {high}")
    return int(value)


@dataclass(frozen=True)
class ConvertSettings:
    """The limits of convert-to, from the config (``api.convert.*`` and ``convert.*``).

    Attributes:
        limits: the converter's limits; ``timeout`` and ``max_parallel`` are convert-to's.
        max_bytes: the largest input accepted (``api.convert.max-bytes``).
    """

    limits: Limits
    max_bytes: int

    @classmethod
    def of(cls, snapshot: Any) -> ConvertSettings:
        """The settings of a config snapshot (``Config.snapshot()``)."""
        return cls(
            limits=Limits(
                timeout=float(snapshot["api.convert.timeout-secs"]),
                max_pages=snapshot["convert.max-pages"],
                page_size=snapshot["convert.page-size"],
                office_url=snapshot["convert.office.url"],
                max_parallel=snapshot["api.convert.max-parallel"],
            ),
            max_bytes=snapshot["api.convert.max-bytes"],
        )


@dataclass(frozen=True)
class Input:
    """A file to convert: where it is, its name as the caller gave it (checked against the
    bytes, quoted in errors, never used as a path) and what to make of it."""

    path: Path
    name: str
    target: Target


@dataclass(frozen=True)
class Result:
    """A conversion's answer.

    Attributes:
        content: the bytes.
        media_type: their media type (``FORMATS``).
        file_name: ``<input base name>.<format>``, safe to show (``result_name``).
    """

    content: bytes
    media_type: str
    file_name: str


def input_name(raw: str) -> str:
    """The name of an uploaded file as convert-to uses it: its last path segment, without
    control characters, at most 255 characters; ``document`` when nothing is left.

    Unlike a print upload's title (``platform.uploads.clean_file_name``), a strange name is
    not refused: it only names the answer, and ``result_name`` makes that safe.
    """
    last = raw.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in last if c.isprintable()).strip()[:255]
    return cleaned if cleaned.strip(".") else "document"


def result_name(name: str, format: str) -> str:
    """``<base name of name>.<format>``: no directory, no quotes, backslashes or control
    characters, at most 100 characters before the extension; ``document`` when nothing is left."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if "." in base.strip("."):
        base = base.rsplit(".", 1)[0]
    base = "".join(c for c in base if c.isprintable() and c not in "\"'`;").strip(" .")[:100]
    return f"{base.strip(' .') or 'document'}.{format}"


def describe_type(path: Path) -> str:
    """The media type of a file printsrv does not convert, as well as its first bytes tell."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not head:
        return "an empty file"
    for magic, media_type in _OTHER_TYPES:
        if head.startswith(magic):
            return media_type
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


# --- the conversion (blocking) -------------------------------------------------------------


def convert_file(
    source: Path,
    out_dir: Path,
    target: Target,
    *,
    name: str,
    limits: Limits,
    deadline: float | None = None,
) -> Path:
    """Convert ``source`` to ``target`` in ``out_dir`` (blocking; for a worker thread) and
    return the result file: for a PDF asked as a PDF, ``source`` itself.

    Raises ``ConversionFailed`` (its ``kind`` says why) and ``InvalidInput`` for a page the
    document does not have or a picture over ``MAX_PIXELS``. ``deadline`` (monotonic) is when
    to give up, ``limits.timeout`` from now by default; every step stops at it.
    """
    if deadline is None:
        deadline = time.monotonic() + limits.timeout
    if sniff(source) is None:
        raise ConversionFailed(
            name, f"its content ({describe_type(source)}) is not a format printsrv converts"
        )
    # The converter starts its own clock: give it what is left of ours.
    within = replace(limits, timeout=max(0.001, deadline - time.monotonic()))
    pdf = convert_sync(source, out_dir, name=name, limits=within).pdf
    if target.format == "pdf":
        return pdf
    if target.format == "png":
        return _page_png(
            pdf, out_dir / "page.png", target, name=name, limits=limits, deadline=deadline
        )
    return _pdf_text(pdf, out_dir / "text.txt", name=name, limits=limits, deadline=deadline)


def page_geometry(pdf: Path, target: Target, *, name: str) -> tuple[float, int]:
    """The width in points of page ``target.page`` of a checked PDF, as shown (its crop box,
    turned by its rotation), and the height in pixels of its picture ``target.width`` wide.

    InvalidInput for a page the document does not have or a picture over ``MAX_PIXELS``;
    ``ConversionFailed`` (damaged) for a crop box or rotation that is not a size or an
    angle: ``inspect_pdf`` checks the media box only, and a crop box of zero width or a
    ``/Rotate`` that is a name once made this a division by zero or a TypeError (a 500).
    """
    with open(pdf, "rb") as handle:
        reader = PdfReader(handle, strict=False)
        pages = len(reader.pages)
        if target.page > pages:
            raise InvalidInput(
                f"page {target.page} is past the end of '{name}', which has {pages} "
                f"page{'s' if pages != 1 else ''}"
            )
        try:
            page = reader.pages[target.page - 1]
            box = page.cropbox
            width, height = abs(float(box.width)), abs(float(box.height))
            # Read raw: pypdf's page.rotation raises TypeError for a /Rotate that is a name.
            rotation = page.get("/Rotate")
            rotation = getattr(rotation, "get_object", lambda: rotation)()
            turned = isinstance(rotation, int) and rotation % 180 == 90
        except Exception as exc:  # pypdf raises many kinds for a malformed box
            raise ConversionFailed(
                name,
                f"page {target.page} has no readable size ({type(exc).__name__})",
                kind="damaged",
            ) from exc
    if turned:
        width, height = height, width
    if not (0 < width <= MAX_PAGE_POINTS and 0 < height <= MAX_PAGE_POINTS):
        raise ConversionFailed(
            name,
            f"page {target.page} is shown {width:.0f} x {height:.0f} points (its crop box); "
            f"it must be more than 0 and at most {MAX_PAGE_POINTS:.0f} a side",
            kind="damaged",
        )
    pixels_high = max(1, round(height * target.width / width))
    if target.width * pixels_high > MAX_PIXELS:
        raise InvalidInput(
            f"page {target.page} at {target.width} pixels wide would be {pixels_high} pixels "
            f"high; at most {MAX_PIXELS:,} pixels in all"
        )
    return width, pixels_high


def _page_png(
    pdf: Path, out: Path, target: Target, *, name: str, limits: Limits, deadline: float
) -> Path:
    """Render page ``target.page`` of a checked PDF as a PNG exactly ``target.width`` wide."""
    width, pixels_high = page_geometry(pdf, target, name=name)
    gs = shutil.which("gs")
    if gs is None:
        raise ConversionFailed(name, "Ghostscript (gs) is not installed on the server")
    # The resolution that makes the page `width` pixels wide; -g with PDFFitPage pins the
    # pixel size exactly, whatever the rounding of the resolution. Ghostscript refuses a
    # resolution near 1 dpi (a few pixels of a large page): from MIN_DPI down, PDFFitPage
    # scales the page into the pixels instead, to the same picture.
    dpi = max(MIN_DPI, target.width * 72.0 / width)
    command = [
        gs, "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sstdout=%stderr",
        "-sDEVICE=png16m", "-dTextAlphaBits=4", "-dGraphicsAlphaBits=4",
        f"-dFirstPage={target.page}", f"-dLastPage={target.page}",
        f"-r{dpi:.4f}", f"-g{target.width}x{pixels_high}", "-dFIXEDMEDIA", "-dPDFFitPage",
        "-dUseCropBox", f"-sOutputFile={out}", str(pdf),
    ]  # fmt: skip
    run_program(
        command, name=name, what="page rendering (Ghostscript)", limits=limits, deadline=deadline
    )
    if not out.is_file():
        raise ConversionFailed(name, "page rendering produced no picture", kind="damaged")
    return out


def _pdf_text(pdf: Path, out: Path, *, name: str, limits: Limits, deadline: float) -> Path:
    """The text of every page of a checked PDF, UTF-8, pages separated by a form feed."""
    try:
        with open(pdf, "rb") as source, open(out, "w", encoding="utf-8") as sink:
            reader = PdfReader(source, strict=False)
            for number, page in enumerate(reader.pages):
                check_deadline(name, limits, deadline)
                if number:
                    sink.write("\f")
                sink.write(page.extract_text())
    except ConversionFailed:
        raise
    except Exception as exc:  # pypdf raises many kinds; the PDF passed inspect_pdf already
        raise ConversionFailed(
            name, f"its text cannot be read ({type(exc).__name__})", kind="damaged"
        ) from exc
    return out


# --- the cap -------------------------------------------------------------------------------


class _Gate:
    """At most ``limit`` holders at once in this process, first come first served.

    Threads and event loops share one gate (a process may serve from several loops: tests,
    a job worker), so it keeps its own lock and wakes a waiter on the waiter's own loop.
    A slot freed while someone waits passes straight to them, so a newcomer cannot
    overtake the queue.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    async def acquire(self, limit: int, timeout: float) -> bool:
        """Take a slot; False when none came free within ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.running < limit and not self._waiters:
                self.running += 1
                return True
            waiter: asyncio.Future[None] = loop.create_future()
            entry = (loop, waiter)
            self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), max(0.0, timeout))
            return True
        except BaseException as exc:
            with self._lock:
                granted = entry not in self._waiters
                if not granted:
                    self._waiters.remove(entry)
            if granted:  # the slot came as the wait ended: pass it on
                self.release()
            if isinstance(exc, TimeoutError):
                return False
            raise

    def release(self) -> None:
        """Give the slot back, to the first waiter if there is one."""
        with self._lock:
            if not self._waiters:
                self.running -= 1
                return
            loop, waiter = self._waiters.popleft()
        with contextlib.suppress(RuntimeError):  # its loop is closed: its request is gone
            loop.call_soon_threadsafe(_grant, waiter)
            return
        self.release()


def _grant(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_GATE = _Gate()


def running() -> int:
    """How many convert-to conversions this process runs now (for tests and metrics)."""
    return _GATE.running


# --- the services --------------------------------------------------------------------------


def _translated(error: ConversionFailed, *, timeout: float) -> PrintsrvError:
    if error.kind == "timeout":
        return ConversionTimedOut(
            f"Converting '{error.document}' took longer than {timeout:.0f} s "
            "(api.convert.timeout-secs)"
        )
    if error.kind == "damaged":
        return DamagedDocument(f"'{error.document}' is damaged: {error.detail}")
    return error


async def convert_path(
    source: Path, work_dir: Path, target: Target, *, name: str, settings: ConvertSettings
) -> Result:
    """Convert ``source`` to ``target`` in ``work_dir`` (the caller's, and the caller
    removes it) under the cap and the time limit, and return the result's bytes.

    Raises ``ConverterBusy`` (no turn within the time limit), ``ConversionTimedOut``,
    ``DamagedDocument``, ``ConversionFailed`` (unsupported input) and ``InvalidInput``.
    """
    timeout = settings.limits.timeout
    deadline = time.monotonic() + timeout
    if not await _GATE.acquire(settings.limits.max_parallel, timeout):
        raise ConverterBusy(
            f"Every conversion slot stayed busy for {timeout:.0f} s; try again later",
            retry_after=max(1, min(60, math.ceil(timeout))),
        )
    try:
        content = await in_thread(
            _convert_and_read, source, work_dir, target, name, settings.limits, deadline
        )
    except ConversionFailed as error:
        raise _translated(error, timeout=timeout) from error
    finally:
        _GATE.release()
    return Result(content, FORMATS[target.format], result_name(name, target.format))


def _convert_and_read(
    source: Path, work_dir: Path, target: Target, name: str, limits: Limits, deadline: float
) -> bytes:
    if time.monotonic() >= deadline:
        raise ConversionFailed(name, "no time was left", kind="timeout")
    result = convert_file(source, work_dir, target, name=name, limits=limits, deadline=deadline)
    return result.read_bytes()


@contextlib.asynccontextmanager
async def _work_dir(home: Path) -> AsyncIterator[Path]:
    work_dir = await in_thread(PdfStore(home).work_dir)
    try:
        yield work_dir
    finally:
        # Waited for even when cancelled (a client that went away): nothing stays on disk.
        await in_thread(shutil.rmtree, work_dir, True)


async def convert_to(
    home: Path,
    settings: ConvertSettings,
    receive: Callable[[Path, int], Awaitable[Input]],
) -> Result:
    """Receive a file and convert it: the whole of ``POST /lool/convert-to``.

    ``receive(work_dir, max_bytes)`` writes the input into ``work_dir`` (a fresh private
    directory under ``home``) and says what it is; it raises ``PayloadTooLarge`` past
    ``max_bytes`` and whatever else refuses the request. The work directory is removed
    before this returns or raises, whatever happened (a refusal, a client that went away).
    """
    async with _work_dir(home) as work_dir:
        source = await receive(work_dir, settings.max_bytes)
        return await convert_path(
            source.path, work_dir, source.target, name=source.name, settings=settings
        )

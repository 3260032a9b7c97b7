"""Anything in -> PDF: PDF, plain text, images, PostScript and office documents.

The format is found by sniffing the bytes (``sniff``); the file name only has a say when it
names a known format, and then it must agree with the bytes ("invoice.pdf" holding a PNG is
refused, so a caller learns that it sent the wrong file). Every result goes through
``inspect_pdf``, which also guards against PDF bombs: at most ``convert.max-pages`` pages, and
no page larger than PDF's own limit of 200 x 200 inches.

    text        UTF-8 (or Latin-1 / Windows-1252 when not UTF-8), wrapped and paginated (reportlab)
    images      JPEG, PNG, GIF (first frame), TIFF (every page): one per page, fitted (Pillow)
    PostScript  Ghostscript's pdfwrite
    office      odt/ods/odp, docx/xlsx/pptx, doc/xls/ppt, rtf: a remote LibreOffice Online /
                Collabora ``convert-to`` endpoint when ``convert.office.url`` is set, otherwise
                headless LibreOffice (soffice) with a fresh private profile per conversion

Conversions run in a thread pool of ``convert.max-parallel`` threads, outside the event loop.
The time limit ``convert.timeout-secs`` starts when a conversion starts: external programs are
killed at it, and the in-process converters check it between pages.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client import Histogram

from printsrv.documents.convert.colour import PageColours, detect_colours_sync
from printsrv.documents.convert.common import ConversionFailed, Converted, Limits
from printsrv.documents.convert.external import (
    office_to_pdf_local,
    office_to_pdf_remote,
    postscript_to_pdf,
)
from printsrv.documents.convert.formats import FORMATS, check_name, sniff
from printsrv.documents.convert.images import image_to_pdf
from printsrv.documents.convert.pdf import inspect_pdf
from printsrv.documents.convert.text import text_to_pdf
from printsrv.platform.threads import run_in_thread

__all__ = [
    "ConversionFailed",
    "Converted",
    "Limits",
    "PageColours",
    "convert",
    "convert_sync",
    "detect_colours",
    "inspect_pdf",
    "sniff",
]

log = logging.getLogger(__name__)

CONVERSION_SECONDS = Histogram(
    "printsrv_conversion_seconds",
    "Time to turn an upload into a checked PDF",
    ["family"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def convert_sync(source: Path, work_dir: Path, *, name: str, limits: Limits) -> Converted:
    """Convert ``source`` to a checked PDF in ``work_dir`` (blocking; for a worker thread).

    ``name`` is the document's name as the caller gave it: it is checked against the bytes
    and quoted in errors, never used as a path. Raises ``ConversionFailed``.
    """
    started = time.monotonic()
    key = sniff(source)
    check_name(name, key)
    assert key is not None
    family = FORMATS[key].family
    try:
        return _convert(source, work_dir, name=name, limits=limits, key=key)
    finally:
        CONVERSION_SECONDS.labels(family).observe(time.monotonic() - started)


def _convert(source: Path, work_dir: Path, *, name: str, limits: Limits, key: str) -> Converted:
    deadline = time.monotonic() + limits.timeout
    source_type = FORMATS[key].mime
    family = FORMATS[key].family
    if family == "pdf":
        pages = inspect_pdf(source, name=name, max_pages=limits.max_pages)
        return Converted(source, pages, source_type)
    target = work_dir / "converted.pdf"
    if family == "text":
        text_to_pdf(source, target, name=name, limits=limits, deadline=deadline)
    elif family == "image":
        image_to_pdf(source, target, name=name, key=key, limits=limits, deadline=deadline)
    elif family == "postscript":
        postscript_to_pdf(source, target, name=name, limits=limits, deadline=deadline)
    elif limits.office_url:
        office_to_pdf_remote(source, target, name=name, key=key, limits=limits, deadline=deadline)
    else:
        office_to_pdf_local(source, target, name=name, key=key, limits=limits, deadline=deadline)
    pages = inspect_pdf(target, name=name, max_pages=limits.max_pages)
    return Converted(target, pages, source_type)


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(size: int) -> ThreadPoolExecutor:
    """The process's conversion pool of ``size`` threads (a new one when the size changes)."""
    with _pools_lock:
        pool = _pools.get(size)
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"convert{size}")
            _pools[size] = pool
        return pool


async def convert(source: Path, work_dir: Path, *, name: str, limits: Limits) -> Converted:
    """``convert_sync`` in the conversion pool: at most ``limits.max_parallel`` at once per
    process, never on the event loop's thread."""
    call = functools.partial(convert_sync, source, work_dir, name=name, limits=limits)
    return await run_in_thread(_pool(limits.max_parallel), call)


async def detect_colours(pdf: Path, *, pages: int, name: str, limits: Limits) -> PageColours | None:
    """Which pages of a checked PDF have colour (``colour.detect_colours_sync``), in the
    conversion pool like a conversion (it renders every page, so it shares that bound), with
    ``convert.timeout-secs`` of its own.

    None when detection fails (Ghostscript missing, broken, too slow): the caller then prices
    every page as colour. That is the price printsrv charged before it detected colour, and
    the one the printer's colour default may really cost; a cheaper fallback would let a
    document made to defeat detection print colour at the monochrome price.
    """
    call = functools.partial(detect_colours_sync, pdf, pages=pages, name=name, limits=limits)
    try:
        # Waited for even when the request is cancelled: Ghostscript is reading a file in the
        # request's work directory, which the adapter removes once this returns.
        return await run_in_thread(_pool(limits.max_parallel), call)
    except ConversionFailed as exc:
        log.warning("colour detection failed, every page counts as colour: %s", exc)
        return None

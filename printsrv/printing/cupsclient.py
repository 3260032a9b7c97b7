"""A small CUPS client over pycups: printers and their capabilities, submit, job state, cancel.

Three facts shape this module (see ``../shared/cups-testing.md`` 4.2 and 4.4):

* libcups keeps its server (and user) **per thread**: ``cups.setServer`` in one thread does not
  reach another, and a fresh thread talks to ``$CUPS_SERVER`` or localhost:631. So every call
  sets the server, and the requesting user, in the worker thread right before it connects.
* pycups blocks. Calls run in a bounded ``ThreadPoolExecutor``; ``await client.submit(...)``
  is the async form, ``client.submit_sync(...)`` the blocking one for the CLI.
* pycups' exceptions stop here: ``_cups_errors`` maps ``cups.IPPError``, ``cups.HTTPError`` and
  the ``RuntimeError`` of a refused connection to ``printsrv.printing.errors``.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Final, TypeVar

import cups

from printsrv.printing.errors import (
    CupsUnavailable,
    JobNotFound,
    OptionRejected,
    PrinterNotFound,
    PrintingError,
    SubmitFailed,
)
from printsrv.printing.models import (
    JobStatus,
    PrinterInfo,
    job_status_from_attributes,
    printer_info_from_attributes,
)
from printsrv.printing.options import supported_values

__all__ = ["CupsClient", "map_cups_errors"]

T = TypeVar("T")

PRINTER_ATTRIBUTES: Final[list[str]] = [
    "printer-name",
    "printer-state",
    "printer-state-message",
    "printer-state-reasons",
    "printer-is-accepting-jobs",
    "printer-info",
    "printer-location",
    "printer-make-and-model",
    "copies-default",
    "copies-supported",
    "sides-default",
    "sides-supported",
    "print-color-mode-default",
    "print-color-mode-supported",
    "media-default",
    "media-supported",
    "sheet-collate-supported",
    "number-up-default",
    "number-up-supported",
    "page-ranges-supported",
    "orientation-requested-default",
    "orientation-requested-supported",
    "print-quality-default",
    "print-quality-supported",
    "print-scaling-supported",
]

JOB_ATTRIBUTES: Final[list[str]] = [
    "job-state",
    "job-printer-state-message",
    "job-impressions-completed",
    "job-media-sheets-completed",
    "job-printer-uri",
]

# cupsd answers a bad value with "Bad copies value 0." (client-error-attributes-or-values) or,
# for ranges libcups mangled while encoding, "Bad page-ranges values 0-0." (bad-request).
_BAD_VALUE_RE: Final = re.compile(r"Bad (?P<attribute>[a-z0-9-]+) values? (?P<value>.*?)\.?$")
# IPP name values are at most 255 octets (RFC 8011 5.1.3).
_MAX_NAME_OCTETS: Final = 255
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
# printFile refusals after which the printer is asked about, to tell the caller why.
_ASK_THE_PRINTER: Final = frozenset(
    {cups.IPP_INTERNAL_ERROR, cups.IPP_NOT_ACCEPTING, cups.IPP_ATTRIBUTES, cups.IPP_BAD_REQUEST}
)


def _ipp_status(exc: cups.IPPError) -> tuple[int, str]:
    """(status, description) from a ``cups.IPPError``, tolerant of odd argument shapes."""
    args = exc.args
    status = args[0] if args and isinstance(args[0], int) else cups.IPP_INTERNAL_ERROR
    description = str(args[1]) if len(args) > 1 else cups.ippErrorString(status)
    return status, description


def _from_ipp(
    server: str,
    status: int,
    description: str,
    *,
    printer: str | None,
    job_id: int | None,
    printer_info: PrinterInfo | None,
    submitting: bool,
) -> PrintingError:
    """Choose the printsrv error for one IPP status, given what the call was about."""
    if status == cups.IPP_SERVICE_UNAVAILABLE:
        return CupsUnavailable(server, description)
    if status in (cups.IPP_NOT_FOUND, cups.IPP_GONE):
        # The same status means "no such job" or "no such printer"; the call knows which.
        if job_id is not None:
            return JobNotFound(job_id)
        if printer is not None:
            return PrinterNotFound(printer)
    if status in (cups.IPP_ATTRIBUTES, cups.IPP_BAD_REQUEST):
        match = _BAD_VALUE_RE.search(description)
        if match is not None:
            attribute = match.group("attribute")
            supported = supported_values(attribute, printer_info) if printer_info else ()
            return OptionRejected(
                attribute, match.group("value"), supported, reason=description, printer=printer
            )
    if submitting and printer is not None:
        return SubmitFailed(printer, description)
    return PrintingError(f"CUPS server '{server}' answered {status:#06x}: {description}")


@contextmanager
def map_cups_errors(
    server: str,
    *,
    printer: str | None = None,
    job_id: int | None = None,
    printer_info: PrinterInfo | None = None,
    submitting: bool = False,
) -> Iterator[None]:
    """Run pycups calls and turn their exceptions into ``printsrv.printing.errors``.

    ``printer`` and ``job_id`` say what the call addresses, which decides between
    ``PrinterNotFound`` and ``JobNotFound``; with ``printer_info`` an ``OptionRejected`` lists
    the printer's supported values; ``submitting`` turns other refusals into ``SubmitFailed``
    (nothing was queued). The original exception stays as ``__cause__``.
    """
    try:
        yield
    except cups.IPPError as exc:
        status, description = _ipp_status(exc)
        raise _from_ipp(
            server,
            status,
            description,
            printer=printer,
            job_id=job_id,
            printer_info=printer_info,
            submitting=submitting,
        ) from exc
    except cups.HTTPError as exc:
        # 401/403/426: cupsd will not serve this client at all; an operator has to act.
        code = exc.args[0] if exc.args else "?"
        raise CupsUnavailable(server, f"HTTP status {code}") from exc
    except RuntimeError as exc:
        # pycups raises a bare RuntimeError('failed to connect to server') from Connection().
        raise CupsUnavailable(server, str(exc) or "connection failed") from exc


def _clean_name(value: str) -> str:
    """Make a string fit an IPP name attribute: no control characters, at most 255 octets.

    Job titles come from upload file names (NULs, 10,000 characters...), and pycups refuses
    embedded NULs with a ValueError of its own. May return an empty string.
    """
    cleaned = _CONTROL_RE.sub(" ", value).strip()
    # Cutting the bytes may split a character; "ignore" drops the broken tail.
    return cleaned.encode("utf-8")[:_MAX_NAME_OCTETS].decode("utf-8", errors="ignore").strip()


class CupsClient:
    """Talks to one CUPS server through pycups, from a bounded pool of worker threads.

    ``server`` is what libcups accepts: a Unix socket path (``/run/cups/cups.sock``) or
    ``host[:port]``. Each method exists twice: ``await client.submit(...)`` and
    ``client.submit_sync(...)``; both run the pycups call in the pool, so the caller's own
    thread never has its libcups state changed. Call ``close()`` when done.
    """

    def __init__(self, server: str, *, max_workers: int = 4) -> None:
        if not server:
            raise ValueError("CupsClient needs a server: a socket path or host[:port]")
        self.server = server
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="cups")
        self._closed = threading.Event()

    def __repr__(self) -> str:
        return f"CupsClient(server={self.server!r})"

    # -- plumbing -------------------------------------------------------------------------

    def _connect(self, user: str | None = None) -> cups.Connection:
        """Open a connection from the current (worker) thread to ``self.server``."""
        # Both are per-thread libcups globals; set them on every call because a pool thread
        # serves every caller. setUser("") returns to the process's own user name.
        cups.setServer(self.server)
        cups.setUser(user or "")
        with map_cups_errors(self.server):
            return cups.Connection()

    def _sync(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed.is_set():
            raise RuntimeError(f"{self!r} is closed")
        return self._pool.submit(fn, *args).result()

    async def _async(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed.is_set():
            raise RuntimeError(f"{self!r} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args))

    def close(self) -> None:
        """Stop the worker threads after the calls already queued."""
        self._closed.set()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> CupsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the calls, run inside a worker thread --------------------------------------------

    def _printer(self, name: str) -> PrinterInfo:
        conn = self._connect()
        with map_cups_errors(self.server, printer=name):
            attrs = conn.getPrinterAttributes(name, requested_attributes=PRINTER_ATTRIBUTES)
        return printer_info_from_attributes(name, attrs)

    def _list_printers(self) -> list[PrinterInfo]:
        conn = self._connect()
        with map_cups_errors(self.server):
            names = sorted(conn.getPrinters())
        printers = []
        for name in names:
            try:
                with map_cups_errors(self.server, printer=name):
                    attrs = conn.getPrinterAttributes(name, requested_attributes=PRINTER_ATTRIBUTES)
            except PrinterNotFound:
                continue  # deleted between the two requests
            printers.append(printer_info_from_attributes(name, attrs))
        return printers

    def _submit(
        self,
        printer: str,
        pdf_path: str | os.PathLike[str],
        title: str,
        options: Mapping[str, str],
        user: str,
    ) -> int:
        for attribute, value in options.items():
            if not isinstance(attribute, str) or not isinstance(value, str):
                raise OptionRejected(str(attribute), value, (), reason="options must be strings")
        path = Path(pdf_path)
        if not path.is_file():
            # libcups reads the file on our side; say so plainly instead of IPP status 0x0412.
            raise SubmitFailed(printer, f"document '{path}' is not a readable file")
        title = _clean_name(title) or "untitled"
        clean_user = _clean_name(user)
        if not clean_user:
            # An empty name would make libcups send the process's own user name instead.
            raise ValueError(f"User name {user!r} is empty once control characters are removed")
        user = clean_user
        conn = self._connect(user)
        # printFile alone on the way that matters: asking for the printer's attributes first
        # doubled the requests cupsd serves per print (it was the largest cost of a submission
        # under load). The printer is asked about only when printFile is refused, to say why.
        try:
            with map_cups_errors(self.server, printer=printer, submitting=True):
                return int(conn.printFile(printer, str(path), title, dict(options)))
        except PrintingError as failed:
            cause = failed.__cause__
            if not isinstance(cause, cups.IPPError):
                raise
            status, description = _ipp_status(cause)
            if status not in _ASK_THE_PRINTER:
                raise
            # Internal-error is what printFile answers for a missing printer and for a cupsd
            # that went away mid-request: a fresh Get-Printer-Attributes raises PrinterNotFound
            # or CupsUnavailable if that is the truth.
            info = self._printer(printer)
            if not info.accepting:
                why = f": {info.state_message}" if info.state_message else ""
                raise SubmitFailed(printer, f"the printer is not accepting jobs{why}") from cause
            if isinstance(failed, OptionRejected):
                # The same refusal, now able to list what the printer supports.
                raise _from_ipp(
                    self.server,
                    status,
                    description,
                    printer=printer,
                    job_id=None,
                    printer_info=info,
                    submitting=True,
                ) from cause
            raise

    def _job_state(self, job_id: int) -> JobStatus:
        conn = self._connect()
        with map_cups_errors(self.server, job_id=job_id):
            attrs = conn.getJobAttributes(job_id, requested_attributes=JOB_ATTRIBUTES)
        return job_status_from_attributes(job_id, attrs)

    def _cancel(self, job_id: int) -> JobStatus:
        conn = self._connect()
        with map_cups_errors(self.server, job_id=job_id):
            try:
                conn.cancelJob(job_id)
            except cups.IPPError as exc:
                # not-possible: the job is already final; its state below says which way.
                if _ipp_status(exc)[0] != cups.IPP_NOT_POSSIBLE:
                    raise
            attrs = conn.getJobAttributes(job_id, requested_attributes=JOB_ATTRIBUTES)
        return job_status_from_attributes(job_id, attrs)

    # -- public API: blocking -------------------------------------------------------------

    def list_printers_sync(self) -> list[PrinterInfo]:
        """Every printer on the server with its capabilities, sorted by name.

        Raises ``CupsUnavailable``.
        """
        return self._sync(self._list_printers)

    def printer_sync(self, name: str) -> PrinterInfo:
        """One printer with its capabilities. Raises ``PrinterNotFound``, ``CupsUnavailable``."""
        return self._sync(self._printer, name)

    def submit_sync(
        self,
        printer: str,
        pdf_path: str | os.PathLike[str],
        title: str,
        options: Mapping[str, str],
        user: str,
    ) -> int:
        """Submit a PDF as ``user`` with IPP ``options`` (already validated); return the job id.

        ``title`` is cleaned of control characters and cut to 255 octets. Raises
        ``PrinterNotFound``, ``CupsUnavailable``, ``OptionRejected`` (the few values cupsd
        itself refuses, such as copies=0), ``SubmitFailed`` (not accepting, unreadable file,
        unsupported format).
        """
        return self._sync(self._submit, printer, pdf_path, title, options, user)

    def job_state_sync(self, job_id: int) -> JobStatus:
        """The job's current state. Raises ``JobNotFound``, ``CupsUnavailable``."""
        return self._sync(self._job_state, job_id)

    def cancel_sync(self, job_id: int) -> JobStatus:
        """Cancel a job and return its state afterwards.

        A job that is already final is left alone, so the returned state may be ``completed``
        or ``aborted``: decide refunds on it, not on having called cancel. Raises
        ``JobNotFound``, ``CupsUnavailable``.
        """
        return self._sync(self._cancel, job_id)

    # -- public API: async ----------------------------------------------------------------

    async def list_printers(self) -> list[PrinterInfo]:
        """Async form of ``list_printers_sync``."""
        return await self._async(self._list_printers)

    async def printer(self, name: str) -> PrinterInfo:
        """Async form of ``printer_sync``."""
        return await self._async(self._printer, name)

    async def submit(
        self,
        printer: str,
        pdf_path: str | os.PathLike[str],
        title: str,
        options: Mapping[str, str],
        user: str,
    ) -> int:
        """Async form of ``submit_sync``."""
        return await self._async(self._submit, printer, pdf_path, title, options, user)

    async def job_state(self, job_id: int) -> JobStatus:
        """Async form of ``job_state_sync``."""
        return await self._async(self._job_state, job_id)

    async def cancel(self, job_id: int) -> JobStatus:
        """Async form of ``cancel_sync``."""
        return await self._async(self._cancel, job_id)

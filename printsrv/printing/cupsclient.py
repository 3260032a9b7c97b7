"""A small CUPS client over pycups: printers and their capabilities, submit, job state, cancel.

Three facts shape this module (see ``docs/cups-testing.md``, traps 3 and "Errors pycups raises"):

* libcups keeps its server (and user) **per thread**: ``cups.setServer`` in one thread does not
  reach another, and a fresh thread talks to ``$CUPS_SERVER`` or localhost:631. So every call
  sets the server, and the requesting user, in the worker thread right before it connects.
* pycups blocks. Calls run in a bounded ``ThreadPoolExecutor``; ``await client.submit(...)``
  is the async form, ``client.submit_sync(...)`` the blocking one for the CLI.
* pycups' exceptions stop here: ``_cups_errors`` maps ``cups.IPPError``, ``cups.HTTPError`` and
  the ``RuntimeError`` of a refused connection to ``printsrv.printing.errors``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from contextlib import contextmanager
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import unquote, urlsplit

import cups

from printsrv.errors import Conflict, InvalidInput, PrintsrvError
from printsrv.platform.threads import run_in_thread
from printsrv.printing.errors import (
    CupsUnavailable,
    JobNotFound,
    OptionRejected,
    PrinterNotFound,
    PrintingError,
    SubmitFailed,
)
from printsrv.printing.options import supported_values
from printsrv.printing.types import (
    JobStatus,
    PrinterInfo,
    job_status_from_attributes,
    printer_info_from_attributes,
)

__all__ = ["EVERYWHERE", "CupsClient", "check_device_uri", "check_printer_name", "map_cups_errors"]

T = TypeVar("T")
log = logging.getLogger(__name__)

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

MARKER_ATTRIBUTES: Final[list[str]] = [
    "marker-names",
    "marker-types",
    "marker-levels",
    "marker-colors",
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


# --- adding and removing printers (`printsrv printer add/remove`) ---------------------------

# The model name that asks the scheduler to build the driver from the printer's own IPP
# answer (`lpadmin -m everywhere`): no PPD to install, only a printer that answers IPP.
EVERYWHERE: Final = "everywhere"
EVERYWHERE_SCHEMES: Final = frozenset({"ipp", "ipps"})
# What an IPP Everywhere printer must accept (PWG 5100.14): PWG raster, or Apple raster or
# PDF, which CUPS' own IPP Everywhere driver also prints with.
EVERYWHERE_FORMATS: Final = frozenset({"image/pwg-raster", "image/urf", "application/pdf"})
# The make-and-model cupsd shows while it builds an IPP Everywhere driver in the background
# ("Remote Printer"), and keeps when it could not reach the printer ("Local Raw Printer").
_PLACEHOLDER_MODELS: Final = frozenset({"Remote Printer", "Local Raw Printer"})
EVERYWHERE_TIMEOUT: Final = 30.0
_POLL: Final = 0.1
# CUPS' own rule for queue names (lpadmin's validate_name): 1-127 printable characters
# without space, '/', '\', '?', quotes or '#'. pycups would quietly turn "a b" into "a+b".
_PRINTER_NAME_RE: Final = re.compile(r"[^\x00-\x20\x7f/\\?'\"#]{1,127}")
_URI_RE: Final = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):[^\x00-\x20\x7f]+")
_LOCAL_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def check_printer_name(name: str) -> str:
    """``name`` if CUPS can call a queue that; InvalidInput saying the rule otherwise."""
    if not isinstance(name, str) or not _PRINTER_NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"Printer name {str(name)[:130]!r} must be 1-127 printable characters without "
            "spaces, '/', '\\', '?', quotes or '#'"
        )
    return name


def check_device_uri(uri: str) -> str:
    """The URI's scheme (lower case) if it looks like a device URI; InvalidInput otherwise."""
    match = _URI_RE.fullmatch(uri or "")
    if match is None:
        raise InvalidInput(
            f"Device URI {str(uri)[:200]!r} is not a URI such as ipp://printer.example.edu/ipp/print"
        )
    return match.group("scheme").lower()


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

    @property
    def is_local(self) -> bool:
        """Whether the CUPS server runs on this machine (a socket path or a loopback host),
        so that a path in a ``file:`` device URI can be checked here."""
        if self.server.startswith("/"):
            return True
        host = self.server.rsplit(":", 1)[0] if self.server.count(":") == 1 else self.server
        return host.lower() in _LOCAL_HOSTS

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
        return await run_in_thread(self._pool, fn, *args)

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

    def _probe_everywhere(self, uri: str) -> None:
        """Ask the device itself, as ``lpadmin -m everywhere`` does, before cupsd is told.

        cupsd builds the driver in the background and, when the printer does not answer,
        only logs it and leaves a stopped raw queue; asking first gives the admin the reason.
        A printer that answers but lists no IPP Everywhere format is refused. An IPP error is
        left for cupsd to judge: it asks on the printer's own resource path, not "/".
        """
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port or 631
        if not host:
            raise InvalidInput(f"Device URI '{uri}' names no host")
        secure = parts.scheme.lower() == "ipps"
        encryption = cups.HTTP_ENCRYPT_ALWAYS if secure else cups.HTTP_ENCRYPT_IF_REQUESTED
        try:
            conn = cups.Connection(host=host, port=port, encryption=encryption)
        except (RuntimeError, cups.HTTPError) as exc:
            raise PrintingError(
                f"No IPP printer answers at '{uri}' ({host}:{port}: {exc or 'connection failed'});"
                " IPP Everywhere asks the printer itself for its capabilities. Check the address,"
                " or give --ppd/--model for a driver queue"
            ) from exc
        try:
            attrs = conn.getPrinterAttributes(
                uri=uri, requested_attributes=["document-format-supported"]
            )
        except (cups.IPPError, cups.HTTPError):
            return
        formats = set(attrs.get("document-format-supported") or ())
        if formats and not formats & EVERYWHERE_FORMATS:
            raise InvalidInput(
                f"The printer at '{uri}' is not an IPP Everywhere printer (it takes "
                f"{', '.join(sorted(formats))}); give --ppd or --model for a driver queue"
            )

    def _await_everywhere(self, conn: cups.Connection, name: str, uri: str, timeout: float) -> None:
        """Wait until cupsd has built the IPP Everywhere driver; remove the queue if it cannot."""
        deadline = time.monotonic() + timeout
        while True:
            with map_cups_errors(self.server, printer=name):
                attrs = conn.getPrinterAttributes(
                    name, requested_attributes=["printer-make-and-model"]
                )
            if attrs.get("printer-make-and-model") not in _PLACEHOLDER_MODELS:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(_POLL)
        with map_cups_errors(self.server, printer=name):
            conn.deletePrinter(name)  # a stopped raw queue would only mislead
        raise PrintingError(
            f"CUPS server '{self.server}' could not set up an IPP Everywhere driver for "
            f"'{uri}' within {timeout:.0f} s (its error_log says why); nothing was added"
        )

    def _add_printer(
        self,
        name: str,
        uri: str,
        ppd_file: str | None,
        model: str | None,
        info: str,
        location: str,
        timeout: float,
    ) -> PrinterInfo:
        check_printer_name(name)
        scheme = check_device_uri(uri)
        if ppd_file is not None and model is not None:
            raise InvalidInput("Give a PPD file or a model, not both")
        model = model if ppd_file is not None or model is not None else EVERYWHERE
        if ppd_file is None and model == EVERYWHERE:
            if scheme not in EVERYWHERE_SCHEMES:
                raise InvalidInput(
                    f"IPP Everywhere needs an ipp:// or ipps:// device URI, not '{scheme}:'; "
                    "for another device give --ppd or --model"
                )
            self._probe_everywhere(uri)
        if scheme == "file" and self.is_local:
            # Debian's CUPS (2.4.2-3+deb12u10) no longer creates a file: device's output
            # file; every job would stop with "could not open the output file".
            path = Path(unquote(urlsplit(uri).path))
            if not path.exists():
                raise InvalidInput(
                    f"The output file '{path}' of '{uri}' does not exist; CUPS does not create "
                    "it: make it first, writable by the scheduler's user (lp)"
                )
        conn = self._connect()
        with map_cups_errors(self.server):
            taken = [n for n in conn.getPrinters() if n.lower() == name.lower()]
        if taken:
            raise Conflict(f"Printer '{taken[0]}' already exists on CUPS server '{self.server}'")
        driver = {"filename": ppd_file} if ppd_file is not None else {"ppdname": model}
        try:
            with map_cups_errors(self.server, printer=name):
                conn.addPrinter(name, device=uri, info=info, location=location, **driver)
        except PrintingError as failed:
            raise self._add_refusal(failed, scheme, ppd_file, model) from failed.__cause__
        if ppd_file is None and model == EVERYWHERE:
            self._await_everywhere(conn, name, uri, timeout)
        with map_cups_errors(self.server, printer=name):
            conn.enablePrinter(name)  # lpadmin -E: start the queue ...
            conn.acceptJobs(name)  # ... and let it take jobs
        return self._printer(name)

    def _add_refusal(
        self, failed: PrintingError, scheme: str, ppd_file: str | None, model: str | None
    ) -> PrintsrvError:
        """Say in the admin's terms why cupsd refused CUPS-Add-Modify-Printer."""
        cause = failed.__cause__
        status = _ipp_status(cause)[0] if isinstance(cause, cups.IPPError) else None
        if status == cups.IPP_NOT_POSSIBLE:
            if scheme == "file":
                return InvalidInput(
                    f"CUPS server '{self.server}' refuses file: device URIs "
                    "(FileDevice No in cups-files.conf)"
                )
            return InvalidInput(
                f"CUPS server '{self.server}' has no backend for device URI scheme '{scheme}:' "
                "(`lpinfo -v` lists the schemes it knows)"
            )
        if status == cups.IPP_DOCUMENT_FORMAT and ppd_file is not None:
            return InvalidInput(f"'{ppd_file}' is not a PPD file CUPS accepts")
        if status == cups.IPP_INTERNAL_ERROR and ppd_file is None:
            return InvalidInput(
                f"CUPS server '{self.server}' has no model '{model}' "
                "(`lpinfo -m` lists them, e.g. drv:///sample.drv/generic.ppd)"
            )
        return failed

    def _delete_printer(self, name: str) -> None:
        conn = self._connect()
        with map_cups_errors(self.server, printer=name):
            conn.deletePrinter(name)

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

    def _markers(self, name: str) -> list[dict[str, object]]:
        conn = self._connect()
        with map_cups_errors(self.server, printer=name):
            attrs = conn.getPrinterAttributes(name, requested_attributes=MARKER_ATTRIBUTES)
        names = list(attrs.get("marker-names") or ())
        types = list(attrs.get("marker-types") or ())
        levels = list(attrs.get("marker-levels") or ())
        colors = list(attrs.get("marker-colors") or ())
        return [
            {
                "name": str(marker),
                "type": str(types[n]) if n < len(types) else "",
                "level": int(levels[n]) if n < len(levels) else -1,
                # "#000000", "#00FFFF#FF00FF#FFFF00" for a multi-colour cartridge, or "none"
                "color": str(colors[n]) if n < len(colors) else "",
            }
            for n, marker in enumerate(names)
        ]

    def _active_jobs(self) -> set[int]:
        conn = self._connect()
        with map_cups_errors(self.server):
            jobs = conn.getJobs(which_jobs="not-completed", requested_attributes=["job-id"])
        return {int(job_id) for job_id in jobs}

    def _jobs_named(self, prefix: str) -> list[int]:
        conn = self._connect()
        with map_cups_errors(self.server):
            jobs = conn.getJobs(which_jobs="all", requested_attributes=["job-id", "job-name"])
        return sorted(
            int(job_id)
            for job_id, attrs in jobs.items()
            if str(attrs.get("job-name", "")).startswith(prefix)
        )

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
        *,
        timeout: float | None = None,
    ) -> int:
        """Submit a PDF as ``user`` with IPP ``options`` (already validated); return the job id.

        ``title`` is cleaned of control characters and cut to 255 octets. Raises
        ``PrinterNotFound``, ``CupsUnavailable``, ``OptionRejected`` (the few values cupsd
        itself refuses, such as copies=0), ``SubmitFailed`` (not accepting, unreadable file,
        unsupported format).

        With ``timeout`` (seconds), ``CupsUnavailable`` when cupsd has not answered by then
        (pycups has no timeout of its own: a hung cupsd would hang the caller). The worker
        thread waits on; should the submission land after all, its job is cancelled, as the
        caller has given up on it.
        """
        if timeout is None:
            return self._sync(self._submit, printer, pdf_path, title, options, user)
        if self._closed.is_set():
            raise RuntimeError(f"{self!r} is closed")
        future = self._pool.submit(self._submit, printer, pdf_path, title, options, user)
        try:
            return future.result(timeout)
        except FuturesTimeout:
            future.add_done_callback(self._cancel_late_submission)
            raise CupsUnavailable(self.server, f"no answer within {timeout:g} s") from None

    def _cancel_late_submission(self, future: Future[int]) -> None:
        """Cancel the job of a submission answered after its caller gave up (in the pool)."""
        if future.cancelled() or future.exception() is not None:
            return
        cups_id = future.result()
        log.warning("CUPS job %s was submitted after its time-out; cancelling it", cups_id)
        try:
            self._cancel(cups_id)
        except PrintingError as exc:
            log.warning("could not cancel late CUPS job %s: %s", cups_id, exc)

    def add_printer_sync(
        self,
        name: str,
        uri: str,
        *,
        ppd_file: str | None = None,
        model: str | None = None,
        info: str = "",
        location: str = "",
        timeout: float = EVERYWHERE_TIMEOUT,
    ) -> PrinterInfo:
        """Create, enable and accept a CUPS queue (``lpadmin -p NAME -E -v URI -m MODEL``);
        return it with its capabilities.

        Without ``ppd_file`` or ``model`` it is an IPP Everywhere queue: the printer at ``uri``
        (ipp/ipps) is asked first, then cupsd builds its driver (waited for up to ``timeout``
        seconds). ``ppd_file`` is a PPD on this machine, uploaded; ``model`` a model the
        server has (``lpinfo -m``). Raises ``InvalidInput`` (bad name, URI or scheme, no
        such model, file: output missing), ``Conflict`` (name taken), ``CupsUnavailable``,
        ``PrintingError`` (the printer at an IPP Everywhere URI does not answer).
        """
        return self._sync(self._add_printer, name, uri, ppd_file, model, info, location, timeout)

    def delete_printer_sync(self, name: str) -> None:
        """Delete a CUPS queue (its pending jobs are cancelled by cupsd).

        Raises ``PrinterNotFound``, ``CupsUnavailable``.
        """
        self._sync(self._delete_printer, name)

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

    async def markers(self, name: str) -> list[dict[str, object]]:
        """The printer's marker (toner, ink) names, types, levels (0-100; negative:
        unknown) and colours (CUPS's marker-colors), as ``{"name", "type", "level",
        "color"}``. Raises ``PrinterNotFound``, ``CupsUnavailable``."""
        return await self._async(self._markers, name)

    async def active_jobs(self) -> set[int]:
        """The ids of the server's jobs that have not ended (pending, held, processing,
        stopped), in one request. Raises ``CupsUnavailable``."""
        return await self._async(self._active_jobs)

    async def jobs_named(self, prefix: str) -> list[int]:
        """The ids of the server's jobs, finished ones included, whose name starts with
        ``prefix``. Raises ``CupsUnavailable``."""
        return await self._async(self._jobs_named, prefix)

"""The errors printing raises; pycups' own exceptions never leave ``printing/``.

    PrintsrvError
    └── PrintingError               something about CUPS or a print job went wrong
        ├── CupsUnavailable         (+ ServiceUnavailable) the CUPS server cannot be reached
        ├── PrinterNotFound         (+ NotFound) no such printer (queue) on the CUPS server
        ├── OptionRejected          (+ InvalidInput) an IPP option or its value is refused
        ├── JobNotFound             (+ NotFound) CUPS does not know the job id
        └── SubmitFailed            CUPS refused or failed to take the job for another reason

The second parents let an adapter's MRO walk pick a sensible status (503, 404, 400) without an entry
for every class here.
"""

from __future__ import annotations

from collections.abc import Iterable

from printsrv.errors import InvalidInput, NotFound, PrintsrvError, ServiceUnavailable

__all__ = [
    "CupsUnavailable",
    "JobNotFound",
    "OptionRejected",
    "PrinterNotFound",
    "PrintingError",
    "SubmitFailed",
]


class PrintingError(PrintsrvError):
    """Base of every printing error; also raised as-is for a CUPS answer no subclass fits."""


class CupsUnavailable(PrintingError, ServiceUnavailable):
    """The CUPS server does not answer (stopped, wrong socket or port) or refuses to serve us.

    ``server`` names the server that was tried. Nothing was submitted; the call may be retried.
    """

    def __init__(self, server: str, detail: str) -> None:
        super().__init__(f"CUPS server '{server}' is unavailable: {detail}")
        self.server = server
        self.detail = detail


class PrinterNotFound(PrintingError, NotFound):
    """The CUPS server has no printer (queue) of that name."""

    def __init__(self, printer: str) -> None:
        super().__init__(f"Printer '{printer}' does not exist on the CUPS server")
        self.printer = printer


class OptionRejected(PrintingError, InvalidInput):
    """An IPP option is unknown, malformed, or its value is outside what the printer supports.

    ``attribute`` is the IPP attribute name, ``value`` the value as given (``None`` when the
    value's type was wrong) and ``supported`` what would have been accepted, in a form fit to
    show a person: keywords, ``"1-9999"`` for a range, or the known attribute names.
    """

    def __init__(
        self,
        attribute: str,
        value: object,
        supported: Iterable[str],
        *,
        reason: str | None = None,
        printer: str | None = None,
    ) -> None:
        self.attribute = attribute
        self.value = value
        self.supported = tuple(supported)
        self.printer = printer
        self.reason = reason
        where = f" on printer '{printer}'" if printer else ""
        why = f": {reason}" if reason else ""
        allowed = ", ".join(self.supported) if self.supported else "(none)"
        super().__init__(
            f"IPP option '{attribute}' has value {value!r}{where}{why}; supported: {allowed}"
        )


class JobNotFound(PrintingError, NotFound):
    """CUPS does not know the job id (never existed, or its history was purged)."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"CUPS job {job_id} does not exist")
        self.job_id = job_id


class SubmitFailed(PrintingError):
    """CUPS refused the job or could not take it: printer not accepting, unsupported document
    format, unreadable file. Nothing was queued."""

    def __init__(self, printer: str, detail: str) -> None:
        super().__init__(f"Could not submit the job to printer '{printer}': {detail}")
        self.printer = printer
        self.detail = detail

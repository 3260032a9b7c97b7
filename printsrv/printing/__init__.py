"""The CUPS-facing core of printing: printers and jobs over pycups, IPP options, prices.

No database and no HTTP here; services and the job tracker build on these pieces:

* ``cupsclient.CupsClient``: printers with capabilities, submit, job state, cancel (async and sync).
* ``options``: merge the option layers and validate them against a ``PrinterInfo``.
* ``costs``: ``count_sheets`` and ``price`` from a page count, the options and a ``CostModel``.
* ``errors``: the ``PrintingError`` tree; pycups exceptions never leave this package.
"""

from printsrv.printing.costs import CostModel, SidePrices, count_sheets, price
from printsrv.printing.cupsclient import CupsClient
from printsrv.printing.errors import (
    CupsUnavailable,
    JobNotFound,
    OptionRejected,
    PrinterNotFound,
    PrintingError,
    SubmitFailed,
)
from printsrv.printing.models import JobStatus, PrinterInfo
from printsrv.printing.options import merge_options, validate_options

__all__ = [
    "CostModel",
    "CupsClient",
    "CupsUnavailable",
    "JobNotFound",
    "JobStatus",
    "OptionRejected",
    "PrinterInfo",
    "PrinterNotFound",
    "PrintingError",
    "SidePrices",
    "SubmitFailed",
    "count_sheets",
    "merge_options",
    "price",
    "validate_options",
]

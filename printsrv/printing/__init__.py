"""Printing: the CUPS-facing core, and the services built on it.

The core (no database, no HTTP), re-exported here:

* ``cupsclient.CupsClient``: printers with capabilities, submit, job state, cancel (async and sync).
* ``options``: merge the option layers and validate them against a ``PrinterInfo``.
* ``costs``: ``count_sheets`` and ``price`` from a page count, the options and a ``CostModel``.
* ``errors``: the ``PrintingError`` tree; pycups exceptions never leave this package.

The services, imported by module: ``context`` (settings, store and client for one request),
``printers`` (synced printers, prices), ``queues``, ``intake`` (upload and release),
``jobs`` (charge, submit, follow, refund), ``charging`` (the door to the ledger), ``history``
(a user's own prints), ``tracker`` (the background loop).
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
from printsrv.printing.options import merge_options, validate_options
from printsrv.printing.types import JobStatus, PrinterInfo

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

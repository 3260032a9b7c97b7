"""What printing needs from one installation: its settings, the PDF store, a CUPS client.

``PrintContext.of(installation)`` reads the current config snapshot, so a changed property
(``cups.server``, ``convert.timeout-secs`` ...) is in force for the next request. CUPS clients
are kept per server for the life of the process: each owns a bounded pool of threads, the
only threads that ever call pycups (see ``cupsclient``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, TypeVar

from printsrv.accounts import service as accounting
from printsrv.documents.convert import Limits
from printsrv.documents.store import PdfStore
from printsrv.operations.installation import Installation
from printsrv.platform.properties import Snapshot
from printsrv.printing.cupsclient import CupsClient
from printsrv.printing.errors import CupsUnavailable

__all__ = ["PrintContext", "cups_client", "cups_server"]

T = TypeVar("T")

DEFAULT_CUPS_SERVER: Final = "/run/cups/cups.sock"
CUPS_THREADS: Final = 4

_clients: dict[str, CupsClient] = {}
_clients_lock = threading.Lock()


def cups_server(snapshot: Snapshot) -> str:
    """The CUPS server to use: ``cups.server``, else ``$CUPS_SERVER``, else the local socket."""
    return snapshot["cups.server"] or os.environ.get("CUPS_SERVER") or DEFAULT_CUPS_SERVER


def cups_client(server: str) -> CupsClient:
    """The process's client for ``server`` (created on first use, then shared)."""
    with _clients_lock:
        client = _clients.get(server)
        if client is None:
            client = CupsClient(server, max_workers=CUPS_THREADS)
            _clients[server] = client
        return client


@dataclass(frozen=True)
class PrintContext:
    """One request's (or one tracker round's) view of the printing settings.

    Attributes:
        installation: the installation (database, config, home).
        store: the PDF store under PRINTSRV_HOME.
        cups: the client of the configured CUPS server.
        limits: conversion limits (``convert.*``).
        max_upload_bytes: ``print.upload.max-bytes``.
        inbox_expiry_hours: ``release.hold-hours``.
        job_timeout: ``print.job.timeout-secs``.
        cups_timeout: ``cups.timeout-secs``, the limit of one pycups call.
        retention_days: ``print.retention-days``.
        default_credit_limit: the credit a USER account with policy DEFAULT may use.
    """

    installation: Installation
    store: PdfStore
    cups: CupsClient
    limits: Limits
    max_upload_bytes: int
    inbox_expiry_hours: int
    job_timeout: float
    cups_timeout: float
    retention_days: int
    default_credit_limit: Decimal

    @classmethod
    def of(cls, installation: Installation) -> PrintContext:
        """The context under the installation's current config."""
        snapshot = installation.config.snapshot()
        return cls(
            installation=installation,
            store=PdfStore(installation.env.home),
            cups=cups_client(cups_server(snapshot)),
            limits=Limits(
                timeout=float(snapshot["convert.timeout-secs"]),
                max_pages=snapshot["convert.max-pages"],
                page_size=snapshot["convert.page-size"],
                office_url=snapshot["convert.office.url"],
                max_parallel=snapshot["convert.max-parallel"],
            ),
            max_upload_bytes=snapshot["print.upload.max-bytes"],
            inbox_expiry_hours=snapshot["release.hold-hours"],
            job_timeout=float(snapshot["print.job.timeout-secs"]),
            cups_timeout=float(snapshot["cups.timeout-secs"]),
            retention_days=snapshot["print.retention-days"],
            default_credit_limit=accounting.settings_of(snapshot).default_credit_limit,
        )

    async def call_cups(self, call: Awaitable[T]) -> T:
        """Await a pycups call, giving up after ``cups_timeout`` (pycups has no timeout).

        On time-out the worker thread runs on until libcups returns; the caller gets
        ``CupsUnavailable``.
        """
        try:
            return await asyncio.wait_for(call, self.cups_timeout)
        except TimeoutError:
            raise CupsUnavailable(
                self.cups.server, f"no answer within {self.cups_timeout:.0f} s"
            ) from None

"""The installation's figures for Prometheus: this process's metrics (platform/observability.py)
and those kept in the database, read at scrape time so every worker and machine agrees."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

from financial.schema import AccountTrx
from printsrv.operations.installation import Installation
from printsrv.printing.models import PrintJob


class DatabaseCollector:
    """Figures kept in the database, read at scrape time so every worker and machine agrees:
    ledger rows by type, print jobs by state, page sides printed."""

    def __init__(self, installation: Installation) -> None:
        self.installation = installation

    def collect(self) -> Any:
        rows = GaugeMetricFamily(
            "printsrv_ledger_transactions", "Ledger rows by transaction type", labels=["type"]
        )
        jobs = GaugeMetricFamily("printsrv_print_jobs", "Print jobs by state", labels=["state"])
        sides = GaugeMetricFamily(
            "printsrv_pages_printed", "Page sides of completed print jobs (copies included)"
        )
        with self.installation.db.read() as session:
            query = select(AccountTrx.trx_type, func.count()).group_by(AccountTrx.trx_type)
            for trx_type, count in session.execute(query):
                rows.add_metric([str(trx_type)], count)
            by_state = select(PrintJob.state, func.count()).group_by(PrintJob.state)
            for state, count in session.execute(by_state):
                jobs.add_metric([state], count)
            printed = session.scalar(
                select(func.coalesce(func.sum(PrintJob.sides), 0)).where(
                    PrintJob.state == "completed"
                )
            )
            sides.add_metric([], int(printed or 0))
        yield rows
        yield jobs
        yield sides


def render_metrics(installation: Installation) -> bytes:
    """The Prometheus text exposition of every metric this installation has."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process_registry = CollectorRegistry()
        MultiProcessCollector(process_registry)
    else:
        process_registry = REGISTRY
    database_registry = CollectorRegistry()
    database_registry.register(DatabaseCollector(installation))
    return generate_latest(process_registry) + generate_latest(database_registry)

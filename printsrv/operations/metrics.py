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
from printsrv.agents.registry import online_by_id
from printsrv.operations.installation import Installation
from printsrv.platform.observability import REQUEST_TALLY
from printsrv.printing.models import Printer, PrintJob


class DatabaseCollector:
    """Figures kept in the database, read at scrape time so every worker and machine agrees:
    ledger rows by type, print jobs by state, page sides printed, print agents online and
    their printers' state."""

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
        agents = GaugeMetricFamily(
            "printsrv_agent_online",
            "1 when the print agent called within 3 poll intervals",
            labels=["agent"],
        )
        remote = GaugeMetricFamily(
            "printsrv_remote_printer_info",
            "Remote printers (always 1): their state as their agent reported it, and whether "
            "the agent is online",
            labels=["printer", "agent", "state", "agent_online"],
        )
        poll_secs = self.installation.config.snapshot()["agents.poll-secs"]
        with self.installation.db.read() as session:
            status = online_by_id(session, poll_secs=poll_secs)
            for name, online in sorted(status.values()):
                agents.add_metric([name], 1 if online else 0)
            remote_rows = select(Printer.name, Printer.state, Printer.agent_id).where(
                Printer.agent_id.is_not(None), Printer.present.is_(True)
            )
            for name, state, agent_id in session.execute(remote_rows):
                agent_name, online = status.get(agent_id, ("", False))
                remote.add_metric([name, agent_name, state, "yes" if online else "no"], 1)
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
        yield agents
        yield remote


def render_metrics(installation: Installation) -> bytes:
    """The Prometheus text exposition of every metric this installation has."""
    REQUEST_TALLY.flush()  # this process's latest requests; other workers' within a second
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process_registry = CollectorRegistry()
        MultiProcessCollector(process_registry)
    else:
        process_registry = REGISTRY
    database_registry = CollectorRegistry()
    database_registry.register(DatabaseCollector(installation))
    return generate_latest(process_registry) + generate_latest(database_registry)

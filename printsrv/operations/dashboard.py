"""The admin console's dashboard: what was printed and spent, what is printing, what failed,
and how the system and the printers are.

`dashboard_figures` runs the aggregate queries, each one statement over an index:
- pages printed per UTC day (completed print jobs, by the day they finished), and money
  spent per UTC day (the ledger's PRINT_OUT rows, charges less refunds), over `days` days;
- the top groups and printers by pages over the same days;
- the jobs in flight (queued or submitted) and the latest failed, aborted or canceled jobs
  with their reasons;
- the batch jobs running and the printers with their state and supply levels.

`supply_levels` reads the local printers' markers (toner, ink) from CUPS through pycups,
each call limited by `cups.timeout-secs`; remote printers' markers are what their agent
last reported (the `printer.markers` column). `DASHBOARD_SQL` is the aggregate SQL as text,
so bench/admin_dashboard.py can time the same queries run directly.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from financial.schema import MoneyType
from printsrv.operations.installation import Installation
from printsrv.operations.status import running_jobs
from printsrv.platform.models import UTCDateTime, utcnow
from printsrv.platform.threads import in_thread
from printsrv.printing.context import cups_client, cups_server
from printsrv.printing.errors import CupsUnavailable, PrintingError

__all__ = [
    "DASHBOARD_SQL",
    "LOW_SUPPLY_PERCENT",
    "Dashboard",
    "DayFigure",
    "JobLine",
    "Marker",
    "PrinterHealth",
    "dashboard_figures",
    "load_dashboard",
    "supply_levels",
]

LOW_SUPPLY_PERCENT = 15  # at or below this level a supply is shown as low
TOP = 8  # groups and printers in the top lists
LISTED_JOBS = 10

_FINAL_FAILED = ("failed", "aborted", "canceled")


def _day(column: str, backend: str) -> str:
    # The UTC calendar day of a timestamp column: PostgreSQL's timestamptz read in UTC as
    # a date; SQLite's stored UTC text as 'YYYY-MM-DD' (`_day_key` makes both a date).
    if backend == "postgresql":
        return f"CAST({column} AT TIME ZONE 'UTC' AS DATE)"  # a date (to_char costs more)
    return f"date({column})"  # text


def _sql(backend: str) -> dict[str, str]:
    # The f-strings insert only _day's fixed expressions of a column name; every value the
    # caller gives is a bound parameter.
    finished_day = _day("finished_at", backend)
    trx_day = _day("created_at", backend)
    return {
        "pages_per_day": f"""
            SELECT {finished_day} AS day, SUM(pages) AS pages
            FROM print_job
            WHERE state = 'completed' AND finished_at >= :since
            GROUP BY 1""",  # noqa: S608
        "spent_per_day": f"""
            SELECT {trx_day} AS day, -SUM(amount) AS spent
            FROM account_trx
            WHERE trx_type = 'PRINT_OUT' AND created_at >= :since
            GROUP BY 1""",  # noqa: S608
        "top_printers": """
            SELECT printer_name AS name, SUM(pages) AS pages
            FROM print_job
            WHERE state = 'completed' AND finished_at >= :since
            GROUP BY printer_name
            ORDER BY 2 DESC, 1
            LIMIT :top""",
        "top_groups": """
            SELECT g.name AS name, SUM(j.pages) AS pages
            FROM print_job j
            JOIN user_group_member m ON m.user_id = j.user_id
            JOIN user_group g ON g.id = m.group_id
            WHERE j.state = 'completed' AND j.finished_at >= :since
            GROUP BY g.name
            ORDER BY 2 DESC, 1
            LIMIT :top""",
        "in_flight": """
            SELECT j.id, d.title, u.user_name, j.printer_name, j.pages, j.cost, j.state,
                   j.message, j.created_at AS at
            FROM print_job j
            JOIN document d ON d.id = j.document_id
            JOIN users u ON u.id = j.user_id
            WHERE j.state IN ('queued', 'submitted')
            ORDER BY j.created_at DESC, j.id DESC
            LIMIT :listed""",
        "failures": """
            SELECT j.id, d.title, u.user_name, j.printer_name, j.pages, j.cost, j.state,
                   j.message, j.finished_at AS at
            FROM print_job j
            JOIN document d ON d.id = j.document_id
            JOIN users u ON u.id = j.user_id
            WHERE j.state IN ('failed', 'aborted', 'canceled') AND j.finished_at >= :since
            ORDER BY j.finished_at DESC, j.id DESC
            LIMIT :listed""",
        "printers": """
            SELECT name, state, state_message, accepting, agent_id, location, markers
            FROM printer
            WHERE present
            ORDER BY name""",
    }


def _job_types() -> dict[str, Any]:
    return {"cost": MoneyType(), "at": UTCDateTime()}


_RESULT_TYPES: dict[str, dict[str, Any]] = {
    "spent_per_day": {"spent": MoneyType()},
    "in_flight": _job_types(),
    "failures": _job_types(),
}


DASHBOARD_SQL = {backend: _sql(backend) for backend in ("sqlite", "postgresql")}
"""The dashboard's aggregate queries by back-end, with parameters since, top, listed."""


@dataclass(frozen=True)
class DayFigure:
    """One UTC day's pages printed and money spent on printing."""

    day: date
    pages: int
    spent: Decimal


@dataclass(frozen=True)
class JobLine:
    """A print job as the dashboard lists it; `at`: created (in flight) or finished."""

    id: int
    title: str
    user_name: str
    printer: str
    pages: int
    cost: Decimal
    state: str
    message: str
    at: datetime | None


@dataclass(frozen=True)
class Marker:
    """A supply (toner, ink, drum ...) of a printer; level 0-100, or negative: unknown."""

    name: str
    kind: str
    level: int
    color: str

    @property
    def known(self) -> bool:
        """Whether the printer reports a level at all."""
        return self.level >= 0

    @property
    def low(self) -> bool:
        """At or below LOW_SUPPLY_PERCENT (CUPS's own 'low' flags vary by driver)."""
        return 0 <= self.level <= LOW_SUPPLY_PERCENT

    @property
    def swatch(self) -> str:
        """A colour to draw the level in: the marker's first colour, else a dark grey."""
        first = self.color[:7]
        if len(first) == 7 and first.startswith("#"):
            try:
                int(first[1:], 16)
                return first
            except ValueError:
                pass
        return "#4f5a6a"


@dataclass
class PrinterHealth:
    """A printer's state and supplies; `supplies_note` says why none are shown."""

    name: str
    state: str
    state_message: str
    accepting: bool
    remote: bool
    location: str
    markers: list[Marker] = field(default_factory=list)
    supplies_note: str = ""

    @property
    def low(self) -> bool:
        """Whether any supply is low."""
        return any(marker.low for marker in self.markers)


@dataclass
class Dashboard:
    """Everything the dashboard shows, as of `now`."""

    now: datetime
    days: list[DayFigure]
    top_groups: list[tuple[str, int]]
    top_printers: list[tuple[str, int]]
    in_flight: list[JobLine]
    failures: list[JobLine]
    batch_jobs: list[tuple[str, datetime]]
    printers: list[PrinterHealth]
    system_status: str = ""

    @property
    def total_pages(self) -> int:
        """Pages over the whole period."""
        return sum(day.pages for day in self.days)

    @property
    def total_spent(self) -> Decimal:
        """Money spent over the whole period."""
        return sum((day.spent for day in self.days), Decimal(0))


def _day_key(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _as_decimal(value: Decimal | None) -> Decimal:
    return Decimal(0) if value is None else value


def _as_datetime(value: datetime | None) -> datetime | None:
    return value


def _jobs(rows: Any) -> list[JobLine]:
    return [
        JobLine(
            row.id,
            row.title,
            row.user_name,
            row.printer_name,
            int(row.pages or 0),
            _as_decimal(row.cost),
            row.state,
            row.message or "",
            _as_datetime(row.at),
        )
        for row in rows
    ]


def _markers(text_value: str) -> list[Marker]:
    try:
        data = json.loads(text_value or "[]")
    except ValueError:
        return []
    return [
        Marker(
            str(m.get("name", "")),
            str(m.get("type", "")),
            int(m.get("level", -1)),
            str(m.get("color", "")),
        )
        for m in data
        if isinstance(m, dict)
    ]


def dashboard_figures(
    session: Session, *, days: int = 30, now: datetime | None = None
) -> Dashboard:
    """The dashboard's figures over the last `days` UTC days (today included), in one read
    transaction; printers come with their stored state, remote ones with their supplies
    (local printers' supplies: `supply_levels`)."""
    current = now or utcnow()
    first = current.date() - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    backend = session.get_bind().dialect.name
    sql = DASHBOARD_SQL["postgresql" if backend == "postgresql" else "sqlite"]
    params = {"since": since, "top": TOP, "listed": LISTED_JOBS}

    def run(name: str) -> Any:
        # `since`, amounts and times typed as their columns are, so each back-end's stored
        # form (SQLite: micro-units, naive UTC text) is converted as the ORM would.
        query = text(sql[name])
        if ":since" in sql[name]:
            query = query.bindparams(bindparam("since", type_=UTCDateTime()))
        if name in _RESULT_TYPES:
            query = query.columns(**_RESULT_TYPES[name])  # type: ignore[assignment]
        return session.execute(query, params)

    pages = {_day_key(row.day): int(row.pages or 0) for row in run("pages_per_day")}
    spent = {_day_key(row.day): _as_decimal(row.spent) for row in run("spent_per_day")}
    series = []
    for n in range(days):
        day = first + timedelta(days=n)
        series.append(DayFigure(day, pages.get(day, 0), spent.get(day, Decimal(0))))
    top_printers = [(r.name, int(r.pages)) for r in run("top_printers")]
    top_groups = [(r.name, int(r.pages)) for r in run("top_groups")]
    in_flight = _jobs(run("in_flight"))
    failures = _jobs(run("failures"))
    printers = [
        PrinterHealth(
            row.name,
            row.state,
            row.state_message,
            bool(row.accepting),
            row.agent_id is not None,
            row.location,
            _markers(row.markers) if row.agent_id is not None else [],
        )
        for row in run("printers")
    ]
    return Dashboard(
        now=current,
        days=series,
        top_groups=top_groups,
        top_printers=top_printers,
        in_flight=in_flight,
        failures=failures,
        batch_jobs=running_jobs(session),
        printers=printers,
    )


async def supply_levels(installation: Installation, printers: list[PrinterHealth]) -> None:
    """Fill in the local printers' supplies from CUPS, all printers at once, each call
    limited by `cups.timeout-secs`; a printer CUPS cannot answer for gets a note instead."""
    snapshot = installation.config.snapshot()
    client = cups_client(cups_server(snapshot))
    timeout = float(snapshot["cups.timeout-secs"])
    local = [printer for printer in printers if not printer.remote]

    async def one(printer: PrinterHealth) -> None:
        try:
            found = await asyncio.wait_for(client.markers(printer.name), timeout)
        except TimeoutError:
            printer.supplies_note = "CUPS did not answer in time"
            return
        except CupsUnavailable:
            printer.supplies_note = "CUPS is not reachable"
            return
        except PrintingError as error:
            printer.supplies_note = error.message
            return
        printer.markers = _markers(json.dumps(found))
        if not printer.markers:
            printer.supplies_note = "No supply levels reported"

    await asyncio.gather(*(one(printer) for printer in local))
    for printer in printers:
        if printer.remote and not printer.markers:
            printer.supplies_note = "No supply levels reported by its agent"


async def load_dashboard(installation: Installation, *, days: int = 30) -> Dashboard:
    """The dashboard as of now: the figures (one read transaction), the system's status,
    and the local printers' supplies from CUPS."""

    def read() -> Dashboard:
        with installation.db.read() as session:
            return dashboard_figures(session, days=days)

    dashboard = await in_thread(read)
    dashboard.system_status = installation.monitor.status(installation.config.snapshot()).value
    await supply_levels(installation, dashboard.printers)
    return dashboard

"""Printers in the database: synchronised from CUPS with their capabilities, and their prices.

``printsrv printer sync`` (and every server at start) copies what CUPS says about each printer
into the ``printer`` table, so requests validate options against stored capabilities without
asking CUPS first. Prices are printsrv's own: a ``CostModel`` per printer, stored as JSON.
Held documents (no printer chosen yet) are checked against ``ANY_PRINTER``, the IPP standard
values, and again against the real printer when released.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from financial.errors import InvalidAmount
from financial.money import money, to_wire
from printsrv.errors import InvalidInput, NotFound
from printsrv.platform.models import utcnow
from printsrv.printing.costs import CostModel, SidePrices
from printsrv.printing.cupsclient import EVERYWHERE_TIMEOUT
from printsrv.printing.errors import OptionRejected, PrinterNotFound
from printsrv.printing.models import Printer, PrintQueue
from printsrv.printing.options import validate_options
from printsrv.printing.types import PrinterInfo

if TYPE_CHECKING:
    from printsrv.platform.database import Database
    from printsrv.printing.cupsclient import CupsClient

__all__ = [
    "ANY_PRINTER",
    "RemoveResult",
    "SyncResult",
    "add_cups_printer",
    "apply_printer_info",
    "cost_from_json",
    "cost_to_json",
    "get_printer",
    "info_from_row",
    "list_printers",
    "parse_media_costs",
    "printer_info",
    "remove_cups_printer",
    "set_cost",
    "sync_printers",
    "validate_for_any_printer",
]

# What a held document's options are checked against before a printer is chosen.
ANY_PRINTER: Final = PrinterInfo(
    name="(any printer)",
    state="idle",
    state_message="",
    state_reasons=(),
    accepting=True,
    info="",
    location="",
    make_and_model="",
    copies_supported=(1, 9999),
    sides_supported=("one-sided", "two-sided-long-edge", "two-sided-short-edge"),
    print_color_mode_supported=(
        "auto",
        "auto-monochrome",
        "bi-level",
        "color",
        "highlight",
        "monochrome",
        "process-bi-level",
        "process-monochrome",
    ),
    media_supported=(),  # checked by syntax below: PWG media names are too many to list
    sheet_collate_supported=("collated", "uncollated"),
    number_up_supported=(1, 2, 4, 6, 9, 16),
    page_ranges_supported=True,
    orientation_requested_supported=(3, 4, 5, 6),
    print_quality_supported=(3, 4, 5),
    print_scaling_supported=("auto", "auto-fit", "fill", "fit", "none"),
    defaults=(),
)
_MEDIA_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
_PRICE_KEYS: Final = ("one_sided_gray", "one_sided_color", "two_sided_gray", "two_sided_color")


def validate_for_any_printer(options: Mapping[str, object]) -> dict[str, str]:
    """Check options for a document that will be held: every value a standard one.

    Raises ``OptionRejected`` naming the attribute and the supported values.
    """
    rest = {k: v for k, v in options.items() if k != "media"}
    checked = validate_options(rest, ANY_PRINTER)
    if "media" in options:
        media = options["media"]
        if not isinstance(media, str) or not _MEDIA_NAME_RE.fullmatch(media):
            raise OptionRejected(
                "media", media, ("a PWG media name such as iso_a4_210x297mm or na_letter_8.5x11in",)
            )
        checked["media"] = media
    return checked


# --- capabilities as stored ------------------------------------------------------------------


def _info_to_json(info: PrinterInfo) -> str:
    return json.dumps(asdict(info), sort_keys=True)


def info_from_row(row: Printer) -> PrinterInfo:
    """The stored capabilities of a printer row, with its stored state."""
    data: dict[str, Any] = json.loads(row.capabilities or "{}")
    tuples = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    tuples["defaults"] = tuple(tuple(pair) for pair in data.get("defaults", ()))
    tuples["copies_supported"] = tuple(data.get("copies_supported", (1, 1)))
    tuples.update(
        name=row.name,
        state=row.state,
        state_message=row.state_message,
        accepting=row.accepting,
    )
    return PrinterInfo(**tuples)


@dataclass(frozen=True)
class SyncResult:
    """What a sync changed: printer names added, updated and no longer on the server."""

    added: tuple[str, ...]
    updated: tuple[str, ...]
    gone: tuple[str, ...]


def _apply(row: Printer, info: PrinterInfo) -> None:
    row.present = True
    row.state = info.state
    row.state_message = info.state_message
    row.accepting = info.accepting
    row.info = info.info
    row.location = info.location
    row.make_and_model = info.make_and_model
    row.capabilities = _info_to_json(info)
    row.synced_at = utcnow()


def apply_printer_info(row: Printer, info: PrinterInfo) -> None:
    """Store ``info`` (capabilities and state) in ``row``, keeping the row's own name."""
    _apply(row, info)


def sync_printers(
    session: Session, printers: list[PrinterInfo], *, listed_at: datetime
) -> SyncResult:
    """Make the ``printer`` table match what CUPS listed at ``listed_at``; prices stay as they are.

    A printer that is no longer listed keeps its row with ``present`` false. Remote printers
    (registered by print agents) are not the central CUPS server's and are left alone.

    A row stored after ``listed_at`` (a `printer add`, or another machine's sync, while this
    listing was on its way) is newer than the listing and is left as it is: otherwise a
    tracker's slow sync could mark a printer added a moment ago as gone.
    """
    rows, fresher = {}, set()
    for row in session.scalars(select(Printer).where(Printer.agent_id.is_(None))):
        if row.synced_at is not None and row.synced_at > listed_at:
            fresher.add(row.name)
        else:
            rows[row.name] = row
    added, updated = [], []
    for info in printers:
        if info.name in fresher:
            continue
        row = rows.get(info.name)
        if row is None:
            row = Printer(name=info.name)
            session.add(row)
            added.append(info.name)
        else:
            updated.append(info.name)
        _apply(row, info)
    listed = {info.name for info in printers}
    gone = [name for name, row in rows.items() if name not in listed and row.present]
    for name in gone:
        rows[name].present = False
        rows[name].synced_at = utcnow()
    session.flush()
    return SyncResult(tuple(added), tuple(updated), tuple(sorted(gone)))


def sync_with_cups(db: Database, client: CupsClient) -> tuple[int, SyncResult]:
    """Read every printer of ``client``'s CUPS server into the database (``printer sync``);
    return how many CUPS listed and what changed."""
    listed_at = utcnow()
    found = client.list_printers_sync()
    with db.transaction() as session:
        return len(found), sync_printers(session, found, listed_at=listed_at)


def store_printer(session: Session, info: PrinterInfo) -> Printer:
    """Insert or refresh one printer's row from CUPS' answer."""
    row = session.scalar(select(Printer).where(Printer.name == info.name))
    if row is None:
        row = Printer(name=info.name)
        session.add(row)
    _apply(row, info)
    session.flush()
    return row


# --- adding and removing CUPS queues ---------------------------------------------------------


def add_cups_printer(
    db: Database,
    client: CupsClient,
    name: str,
    uri: str,
    *,
    ppd_file: str | None = None,
    model: str | None = None,
    info: str = "",
    location: str = "",
    timeout: float = EVERYWHERE_TIMEOUT,
) -> PrinterInfo:
    """Create a queue on the CUPS server (an IPP Everywhere one unless a PPD file or model is
    given; see ``CupsClient.add_printer_sync``), then store it as ``printer sync`` would.

    CUPS goes first and outside the transaction: a refusal there leaves the database as it
    was, and no database lock is held while cupsd builds a driver. Should the database
    fail afterwards, the queue is on CUPS and the next sync (each server's tracker runs one
    every few minutes, or `printer sync`) stores it. Prices and access lists of a printer
    of that name that had gone stay, as with sync.
    """
    added = client.add_printer_sync(
        name, uri, ppd_file=ppd_file, model=model, info=info, location=location, timeout=timeout
    )
    with db.transaction() as session:
        store_printer(session, added)
    return added


@dataclass(frozen=True)
class RemoveResult:
    """What ``remove_cups_printer`` did.

    Attributes:
        on_cups: whether a CUPS queue was deleted (False: it had already left CUPS).
        routed_queues: printsrv queues still routing to the printer, to re-route.
    """

    on_cups: bool
    routed_queues: tuple[str, ...]


def remove_cups_printer(db: Database, client: CupsClient, name: str) -> RemoveResult:
    """Delete a CUPS queue and mark printsrv's printer gone, as sync does when a printer
    leaves CUPS: the row stays for the document log, its prices and access lists for a
    printer that comes back under that name.

    A printer printsrv still lists as present but CUPS no longer has is only marked gone.
    NotFound when neither CUPS nor printsrv has it; CupsUnavailable changes nothing. Should
    the database fail after CUPS deleted the queue, the next sync marks it gone.
    """
    try:
        client.delete_printer_sync(name)
        on_cups = True
    except PrinterNotFound:
        on_cups = False
    with db.transaction() as session:
        row = session.scalar(select(Printer).where(Printer.name == name))
        if not on_cups and (row is None or not row.present):
            raise NotFound(
                f"Printer '{name}' is not on CUPS server '{client.server}'"
                + (" (printsrv already lists it as gone)" if row is not None else "")
            )
        if row is not None:
            row.present = False
            row.synced_at = utcnow()
        routed = session.scalars(
            select(PrintQueue.name).where(PrintQueue.printer_name == name).order_by(PrintQueue.name)
        )
        return RemoveResult(on_cups, tuple(routed))


def get_printer(session: Session, name: str) -> Printer:
    """The printer row of that name; NotFound (with a hint to sync) otherwise."""
    if "\x00" in name:  # no printer's name; PostgreSQL refuses NUL in text (a 500 once)
        raise NotFound(f"Printer {name[:40]!r} is not known")
    row = session.scalar(select(Printer).where(Printer.name == name))
    if row is None:
        raise NotFound(
            f"Printer '{name}' is not known; `printsrv printer sync` reads the CUPS printers"
        )
    return row


def printer_info(session: Session, name: str) -> PrinterInfo:
    """The capabilities of a printer that is on the CUPS server; NotFound otherwise."""
    row = get_printer(session, name)
    if not row.present:
        raise NotFound(f"Printer '{name}' is no longer on the CUPS server")
    return info_from_row(row)


def list_printers(session: Session) -> list[Printer]:
    """Every printer row, sorted by name."""
    return list(session.scalars(select(Printer).order_by(Printer.name)))


# --- prices ----------------------------------------------------------------------------------


def _prices_to_dict(prices: SidePrices) -> dict[str, str]:
    return {key: to_wire(getattr(prices, key)) for key in _PRICE_KEYS}


def cost_to_json(model: CostModel) -> str:
    """The stored form of a cost model."""
    return json.dumps(
        {
            "default": _prices_to_dict(model.default),
            "media": {name: _prices_to_dict(prices) for name, prices in model.media},
        },
        sort_keys=True,
    )


def _prices_from_dict(data: Mapping[str, str]) -> SidePrices:
    return SidePrices(**{key: money(data[key]) for key in _PRICE_KEYS})


def cost_from_json(text: str | None) -> CostModel | None:
    """The cost model stored for a printer; None when printing there is free."""
    if not text:
        return None
    data = json.loads(text)
    return CostModel.per_media(
        _prices_from_dict(data["default"]),
        {name: _prices_from_dict(prices) for name, prices in data.get("media", {}).items()},
    )


def set_cost(session: Session, name: str, model: CostModel | None) -> Printer:
    """Give a printer its prices (None: free)."""
    row = get_printer(session, name)
    row.cost_model = cost_to_json(model) if model is not None else None
    session.flush()
    return row


def _price(value: object, where: str) -> Decimal:
    if not isinstance(value, str | int):
        raise InvalidInput(f'{where}: price {value!r} must be a decimal string such as "0.10"')
    try:
        return money(value)
    except InvalidAmount as exc:
        raise InvalidInput(f"{where}: {exc}") from None


def _side_prices(value: object, where: str) -> SidePrices:
    """``{"one-sided": {"grayscale": P, "color": P}, "two-sided": {...}}`` as SidePrices."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be an object with 'one-sided' and 'two-sided'")
    prices: dict[str, Decimal] = {}
    for sides, prefix in (("one-sided", "one_sided"), ("two-sided", "two_sided")):
        table = value.get(sides)
        if not isinstance(table, dict) or set(table) != {"grayscale", "color"}:
            raise InvalidInput(f'{where}.{sides} must be {{"grayscale": P, "color": P}}')
        prices[f"{prefix}_gray"] = _price(table["grayscale"], f"{where}.{sides}.grayscale")
        prices[f"{prefix}_color"] = _price(table["color"], f"{where}.{sides}.color")
    unknown = set(value) - {"one-sided", "two-sided"}
    if unknown:
        raise InvalidInput(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
    return SidePrices(**prices)


def parse_media_costs(data: object) -> CostModel:
    """A cost model from the ``--media-costs`` JSON file.

    The file maps media keywords (and ``default``, required, for every other media) to
    prices per side::

        {"default":          {"one-sided": {"grayscale": "0.10", "color": "0.50"},
                              "two-sided": {"grayscale": "0.08", "color": "0.40"}},
         "iso_a3_297x420mm": {"one-sided": {"grayscale": "0.20", "color": "1.00"},
                              "two-sided": {"grayscale": "0.16", "color": "0.80"}}}
    """
    if not isinstance(data, dict):
        raise InvalidInput("The media costs file must hold a JSON object")
    if "default" not in data:
        raise InvalidInput("The media costs file needs a 'default' entry for other media")
    default = _side_prices(data["default"], "default")
    media = {name: _side_prices(value, name) for name, value in data.items() if name != "default"}
    for name in media:
        if not _MEDIA_NAME_RE.fullmatch(name):
            raise InvalidInput(f"'{name}' is not a media keyword such as iso_a4_210x297mm")
    return CostModel.per_media(default, media)


def describe_cost(model: CostModel | None) -> list[str]:
    """Lines describing a cost model for a person (the CLI)."""
    if model is None:
        return ["free"]

    def line(label: str, prices: SidePrices) -> str:
        return (
            f"{label}: one-sided {to_wire(prices.one_sided_gray)} gray / "
            f"{to_wire(prices.one_sided_color)} colour, two-sided "
            f"{to_wire(prices.two_sided_gray)} gray / {to_wire(prices.two_sided_color)} colour"
        )

    return [line("default", model.default)] + [line(name, p) for name, p in model.media]

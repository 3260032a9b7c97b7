"""The printers an agent registers: its CUPS queues, named AGENT/PRINTER centrally.

An agent sends its whole list on start and whenever its CUPS changes; the list replaces
what the agent registered before: new printers are added, listed ones refreshed (state,
capabilities, marker levels), and the others marked gone (their rows stay for the
document log, with their prices and access lists for when they come back). From then on
they are printers like any other for queues, prices, access lists and release.

The list comes from outside, so every field is checked and a bad one is refused with its
name (InvalidInput, 400) before anything is written.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, fields
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from printsrv.agents.models import Agent
from printsrv.errors import InvalidInput
from printsrv.printing.models import Printer
from printsrv.printing.printers import apply_printer_info
from printsrv.printing.types import PrinterInfo

__all__ = [
    "MAX_PRINTERS",
    "central_name",
    "local_name",
    "parse_printers",
    "printer_to_wire",
    "register_printers",
]

MAX_PRINTERS: Final = 200
# CUPS' rule for queue names: printable, no space, '/', '#' or quotes; 127 bytes at most.
_PRINTER_RE: Final = re.compile(r"[^\s/#'\"\\\x00-\x1f\x7f]{1,127}")
_TEXT: Final = {"state", "state_message", "info", "location", "make_and_model"}
_WORDS: Final = {
    "state_reasons",
    "sides_supported",
    "print_color_mode_supported",
    "media_supported",
    "sheet_collate_supported",
    "print_scaling_supported",
}
_NUMBERS: Final = {
    "number_up_supported",
    "orientation_requested_supported",
    "print_quality_supported",
}
_FLAGS: Final = {"accepting", "page_ranges_supported"}
_MAX_TEXT: Final = 1000
_MAX_ITEMS: Final = 500


def central_name(agent: str, printer: str) -> str:
    """The central name of an agent's printer: AGENT/PRINTER."""
    return f"{agent}/{printer}"


def local_name(agent: str, central: str) -> str:
    """The agent's own name of its printer ``central`` (AGENT/PRINTER)."""
    prefix = f"{agent}/"
    return central[len(prefix) :] if central.startswith(prefix) else central


def printer_to_wire(
    info: PrinterInfo, markers: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A printer as the agent sends it (the inverse of ``parse_printers`` for one)."""
    data = asdict(info)
    data["markers"] = markers or []
    return data


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise InvalidInput(
            f"{where} must be a string of at most {_MAX_TEXT} characters", reason=where
        )
    return value


def _list(value: object, where: str, kind: type) -> tuple[Any, ...]:
    if not isinstance(value, list) or len(value) > _MAX_ITEMS:
        raise InvalidInput(f"{where} must be a list of at most {_MAX_ITEMS} items", reason=where)
    for item in value:
        # bool is an int in Python; a flag is never a number here.
        if not isinstance(item, kind) or isinstance(item, bool):
            raise InvalidInput(f"{where} must hold only {kind.__name__} values", reason=where)
        if kind is str and len(item) > 255:
            raise InvalidInput(f"{where} has a value longer than 255 characters", reason=where)
    return tuple(value)


def _markers(value: object, where: str) -> list[dict[str, Any]]:
    """Marker levels: [{"name": "black", "type": "toner", "level": 0-100 or -1,
    "color": "#000000"}, ...]; "color" (CUPS's marker-colors) is optional."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 50:
        raise InvalidInput(f"{where} must be a list of at most 50 markers", reason=where)
    markers = []
    for n, marker in enumerate(value):
        at = f"{where}[{n}]"
        if not isinstance(marker, dict) or set(marker) - {"name", "type", "level", "color"}:
            raise InvalidInput(f"{at} must be {{'name', 'type', 'level', 'color'}}", reason=at)
        level = marker.get("level", -1)
        if not isinstance(level, int) or isinstance(level, bool) or not -3 <= level <= 100:
            raise InvalidInput(f"{at}.level must be a whole number from -3 to 100", reason=at)
        markers.append(
            {
                "name": _text(marker.get("name", ""), f"{at}.name"),
                "type": _text(marker.get("type", ""), f"{at}.type"),
                "level": level,
                "color": _text(marker.get("color", ""), f"{at}.color"),
            }
        )
    return markers


def _printer(value: object, where: str) -> tuple[PrinterInfo, list[dict[str, Any]]]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be an object", reason=where)
    known = {f.name for f in fields(PrinterInfo)} | {"markers"}
    unknown = sorted(set(value) - known)
    if unknown:
        raise InvalidInput(f"{where}.{unknown[0]} is not a printer field", reason=unknown[0])
    missing = sorted(known - {"markers"} - set(value))
    if missing:
        raise InvalidInput(f"{where}.{missing[0]} is missing", reason=missing[0])
    name = value["name"]
    if not isinstance(name, str) or not _PRINTER_RE.fullmatch(name):
        raise InvalidInput(f"{where}.name {name!r} is not a CUPS printer name", reason="name")
    data: dict[str, Any] = {"name": name}
    for key in _TEXT:
        data[key] = _text(value[key], f"{where}.{key}")
    for key in _WORDS:
        data[key] = _list(value[key], f"{where}.{key}", str)
    for key in _NUMBERS:
        data[key] = _list(value[key], f"{where}.{key}", int)
    for key in _FLAGS:
        if not isinstance(value[key], bool):
            raise InvalidInput(f"{where}.{key} must be true or false", reason=key)
        data[key] = value[key]
    copies = _list(value["copies_supported"], f"{where}.copies_supported", int)
    if len(copies) != 2 or not 1 <= copies[0] <= copies[1]:
        raise InvalidInput(
            f"{where}.copies_supported must be [min, max]", reason="copies_supported"
        )
    data["copies_supported"] = copies
    defaults = value["defaults"]
    if not isinstance(defaults, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
        for pair in defaults
    ):
        raise InvalidInput(f"{where}.defaults must be a list of [option, value]", reason="defaults")
    data["defaults"] = tuple(tuple(pair) for pair in defaults)
    return PrinterInfo(**data), _markers(value.get("markers"), f"{where}.markers")


def parse_printers(document: object) -> list[tuple[PrinterInfo, list[dict[str, Any]]]]:
    """``{"printers": [...]}`` as printers and their marker levels; InvalidInput naming the
    first bad field (nothing is registered then)."""
    if not isinstance(document, dict) or set(document) != {"printers"}:
        raise InvalidInput('The body must be {"printers": [...]}', reason="printers")
    printers = document["printers"]
    if not isinstance(printers, list) or len(printers) > MAX_PRINTERS:
        raise InvalidInput(f"printers must be a list of at most {MAX_PRINTERS}", reason="printers")
    parsed = [_printer(p, f"printers[{n}]") for n, p in enumerate(printers)]
    names = [info.name.lower() for info, _ in parsed]
    if len(set(names)) != len(names):
        raise InvalidInput("printers lists a printer name twice", reason="printers")
    return parsed


def register_printers(
    session: Session, agent: Agent, printers: list[tuple[PrinterInfo, list[dict[str, Any]]]]
) -> list[str]:
    """Make the agent's printers what it listed; return their central names, sorted.

    A central printer of the same name that is not this agent's (another agent's never
    clashes: the prefix differs) is refused with InvalidInput.
    """
    rows = {
        row.name: row
        for row in session.scalars(
            select(Printer).where(Printer.name.startswith(f"{agent.name}/", autoescape=True))
        )
    }
    listed = []
    for info, markers in printers:
        name = central_name(agent.name, info.name)
        row = rows.get(name)
        if row is None:
            row = Printer(name=name, agent_id=agent.id)
            session.add(row)
        row.agent_id = agent.id
        apply_printer_info(row, info)
        row.markers = json.dumps(markers)
        listed.append(name)
    for name, row in rows.items():
        if name not in listed and row.present:
            row.present = False
    session.flush()
    return sorted(listed)

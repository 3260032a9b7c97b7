"""IPP job options: merge the three layers, then validate against a printer's capabilities.

CUPS stores keyword values it does not support (``sides=three-sided`` is accepted and the job
"completes" one-sided), so every option is checked here, before anything is charged or sent.
Options are ``dict[str, str]``, as in the ``ipp_options`` JSON and as pycups wants them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from printsrv.printing.errors import OptionRejected
from printsrv.printing.types import PrinterInfo

__all__ = [
    "KNOWN_ATTRIBUTES",
    "PageRanges",
    "is_duplex",
    "is_grayscale",
    "merge_options",
    "parse_page_ranges",
    "parse_positive_int",
    "supported_values",
    "validate_options",
]

PageRanges = tuple[tuple[int, int], ...]

# Keyword values that print without colour; everything else (color, auto, absent) may use it.
GRAYSCALE_MODES: Final[frozenset[str]] = frozenset(
    {"monochrome", "process-monochrome", "auto-monochrome", "bi-level", "process-bi-level"}
)
# Nine digits keep int() cheap and every count far below what Decimal arithmetic would mind.
_INT_RE: Final = re.compile(r"[0-9]{1,9}")
_RANGE_RE: Final = re.compile(r"([0-9]{1,9})(?:-([0-9]{1,9}))?")
_PAGE_RANGES_HINT: Final = "ascending, non-overlapping page ranges such as '1-3,5'"


def merge_options(
    printer_defaults: Mapping[str, str],
    queue_routing: Mapping[str, str],
    requested: Mapping[str, str],
) -> dict[str, str]:
    """Merge the option layers into a new dict; later layers win.

    Precedence, lowest first: the printer's defaults, the queue's routing options, the
    request's ``ipp_options``. Nothing is validated here; call ``validate_options`` on the result.
    """
    merged: dict[str, str] = {}
    for layer in (printer_defaults, queue_routing, requested):
        merged.update(layer)
    return merged


def parse_positive_int(attribute: str, value: str, supported: tuple[str, ...]) -> int:
    """Parse a decimal integer >= 1 (no sign, no spaces), else ``OptionRejected``."""
    if not _INT_RE.fullmatch(value) or int(value) < 1:
        raise OptionRejected(attribute, value, supported, reason="not a positive integer")
    return int(value)


def parse_page_ranges(value: str, pages: int | None = None) -> PageRanges:
    """Parse ``page-ranges`` (``"1-3,5"``) into inclusive ``(first, last)`` pairs.

    Ranges must be ascending and must not overlap, as IPP requires; open ends (``"5-"``) are
    refused because the page count may not be known yet. With ``pages`` given, every range must
    also lie within ``1..pages``.
    """
    supported = (
        (_PAGE_RANGES_HINT,) if pages is None else (f"{_PAGE_RANGES_HINT} within 1-{pages}",)
    )
    ranges: list[tuple[int, int]] = []
    previous_last = 0
    for part in value.split(","):
        match = _RANGE_RE.fullmatch(part)
        if match is None:
            raise OptionRejected("page-ranges", value, supported, reason=f"'{part}' is not a range")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if first < 1 or last < first:
            raise OptionRejected("page-ranges", value, supported, reason=f"'{part}' is empty")
        if first <= previous_last:
            raise OptionRejected(
                "page-ranges", value, supported, reason=f"'{part}' is not after the range before it"
            )
        if pages is not None and last > pages:
            raise OptionRejected(
                "page-ranges", value, supported, reason=f"the document has {pages} pages"
            )
        ranges.append((first, last))
        previous_last = last
    return tuple(ranges)


def is_duplex(options: Mapping[str, str]) -> bool:
    """Whether ``sides`` asks for two-sided printing (long or short edge)."""
    return options.get("sides", "one-sided").startswith("two-sided")


def is_grayscale(options: Mapping[str, str]) -> bool:
    """Whether ``print-color-mode`` rules out colour.

    An absent mode counts as colour: the merged options carry the printer's default, so absence
    means a printer that does not say, and charging colour there is the safe error.
    """
    return options.get("print-color-mode", "") in GRAYSCALE_MODES


# -- per-attribute rules ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    """How one attribute is checked: its value syntax and where its supported values come from."""

    kind: Literal["keyword", "enum", "copies", "page-ranges", "boolean"]
    supported: Callable[[PrinterInfo], tuple[object, ...]]


_RULES: Final[Mapping[str, _Rule]] = {
    "copies": _Rule("copies", lambda p: p.copies_supported),
    "sides": _Rule("keyword", lambda p: p.sides_supported),
    "print-color-mode": _Rule("keyword", lambda p: p.print_color_mode_supported),
    "media": _Rule("keyword", lambda p: p.media_supported),
    "sheet-collate": _Rule("keyword", lambda p: p.sheet_collate_supported),
    "number-up": _Rule("enum", lambda p: p.number_up_supported),
    "page-ranges": _Rule("page-ranges", lambda p: (p.page_ranges_supported,)),
    "orientation-requested": _Rule("enum", lambda p: p.orientation_requested_supported),
    "print-quality": _Rule("enum", lambda p: p.print_quality_supported),
    "print-scaling": _Rule("keyword", lambda p: p.print_scaling_supported),
    # A cups-filters option with no *-supported attribute; pdftopdf honours it.
    "fit-to-page": _Rule("boolean", lambda p: ("true", "false")),
}

KNOWN_ATTRIBUTES: Final[tuple[str, ...]] = tuple(sorted(_RULES))


def _shown(rule: _Rule, printer: PrinterInfo, pages: int | None) -> tuple[str, ...]:
    """The supported values of a rule, as a person should read them in an error."""
    if rule.kind == "copies":
        low, high = printer.copies_supported
        return (f"{low}-{high}",)
    if rule.kind == "page-ranges":
        if not printer.page_ranges_supported:
            return ()
        return (_PAGE_RANGES_HINT,) if pages is None else (f"{_PAGE_RANGES_HINT} within 1-{pages}",)
    return tuple(str(v) for v in rule.supported(printer))


def _check(attribute: str, rule: _Rule, value: str, printer: PrinterInfo, pages: int | None) -> str:
    """Return ``value`` normalized, or raise ``OptionRejected``."""
    shown = _shown(rule, printer, pages)
    if rule.kind in ("keyword", "boolean"):
        if value not in shown:
            raise OptionRejected(attribute, value, shown, printer=printer.name)
        return value
    if rule.kind == "enum":
        number = parse_positive_int(attribute, value, shown)
        if number not in rule.supported(printer):
            raise OptionRejected(attribute, value, shown, printer=printer.name)
        return str(number)
    if rule.kind == "copies":
        low, high = printer.copies_supported
        number = parse_positive_int(attribute, value, shown)
        if not low <= number <= high:
            raise OptionRejected(
                attribute, value, shown, printer=printer.name, reason="out of range"
            )
        return str(number)
    # page-ranges
    if not printer.page_ranges_supported:
        raise OptionRejected(
            attribute, value, shown, printer=printer.name, reason="the printer cannot select pages"
        )
    ranges = parse_page_ranges(value, pages)
    # One spelling ('2-2' becomes '2') so that stored options compare equal.
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def supported_values(
    attribute: str, printer: PrinterInfo, pages: int | None = None
) -> tuple[str, ...]:
    """What ``printer`` accepts for ``attribute``, worded for a person (``("1-9999",)`` for
    copies); the known attribute names when ``attribute`` itself is unknown."""
    rule = _RULES.get(attribute)
    return KNOWN_ATTRIBUTES if rule is None else _shown(rule, printer, pages)


def validate_options(
    options: Mapping[str, object], printer: PrinterInfo, *, pages: int | None = None
) -> dict[str, str]:
    """Check every option against ``printer`` and return them normalized (e.g. ``copies='02'``
    becomes ``'2'``).

    Refuses, with ``OptionRejected`` naming the attribute, the value and the supported values:
    attributes outside ``KNOWN_ATTRIBUTES``; non-string values; keywords and enums outside the
    printer's ``*-supported``; copies that are not an integer within ``copies-supported``;
    malformed or descending ``page-ranges``, or ranges beyond ``pages`` once the page count is
    known. Attributes are checked in sorted order so the first error reported is stable.
    """
    checked: dict[str, str] = {}
    for attribute in sorted(options):
        value = options[attribute]
        rule = _RULES.get(attribute)
        if rule is None:
            raise OptionRejected(
                attribute, value, KNOWN_ATTRIBUTES, printer=printer.name, reason="unknown attribute"
            )
        if not isinstance(value, str):
            # JSON numbers and booleans arrive here; the contract says values are strings.
            raise OptionRejected(
                attribute,
                value,
                _shown(rule, printer, pages),
                printer=printer.name,
                reason="not a string",
            )
        checked[attribute] = _check(attribute, rule, value, printer, pages)
    return checked

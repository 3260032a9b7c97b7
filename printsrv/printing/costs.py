"""Pricing a print job from its page count and IPP options; pure, Decimal only.

The price is computed before submission from the PDF's page count and the merged, validated
options, never from what CUPS later reports (its counts include inserted blank pages and, for a
failed job, every retry).

Counting, per copy: the pages selected by ``page-ranges`` (pages beyond the document are simply
not there), placed ``number-up`` to a side, give the printed sides; two-sided printing puts two
sides on a sheet, and each copy starts on a fresh sheet. Pricing, per copy: every full duplex sheet
costs two sides at the two-sided price, the odd last side of a duplex copy costs the one-sided
price, and one-sided sides cost the one-sided price; colour or grayscale by ``print-color-mode``,
prices per ``media`` when the model has an entry for it.

Per-page colour: given which pages have colour (``page_colors``, from the PDF's colour
detection), a side costs the colour price when any page on it has colour and the grayscale
price otherwise, unless ``print-color-mode`` rules out colour (then every side is grayscale).
The caller passes ``page_colors`` only when the job did not ask for a colour mode: an explicit
``print-color-mode`` is priced as asked for every page, as SavaPage does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from printsrv.errors import InvalidInput
from printsrv.printing.options import (
    is_duplex,
    is_grayscale,
    parse_page_ranges,
    parse_positive_int,
)

__all__ = ["CostModel", "SidePrices", "count_sheets", "price"]

PLACES: Final = Decimal("0.000001")
MAX_PRICE: Final = Decimal("1000000")


def _check_price(name: str, value: object) -> None:
    """Refuse anything but a finite, non-negative Decimal with at most 6 decimal places."""
    if not isinstance(value, Decimal):
        # A float has already lost the cents it was meant to carry; convert at the boundary.
        raise TypeError(f"Price {name} must be a Decimal, not {type(value).__name__} {value!r}")
    if not value.is_finite():
        raise InvalidInput(f"Price {name} '{value:f}' is not a finite number")
    if value < 0:
        raise InvalidInput(f"Price {name} '{value:f}' is negative")
    if value > MAX_PRICE:
        # Also keeps every total within Decimal's 28 digits, so quantize() cannot fail.
        raise InvalidInput(f"Price {name} '{value:f}' is more than {MAX_PRICE} per side")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -6:
        raise InvalidInput(f"Price {name} '{value:f}' has more than 6 decimal places")


@dataclass(frozen=True)
class SidePrices:
    """The price of one printed side, by one-sided/two-sided and grayscale/colour.

    Attributes:
        one_sided_gray, one_sided_color: per side of a one-sided sheet (and for the odd last
            side of a two-sided copy).
        two_sided_gray, two_sided_color: per side of a two-sided sheet.
    """

    one_sided_gray: Decimal
    one_sided_color: Decimal
    two_sided_gray: Decimal
    two_sided_color: Decimal

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_price(f.name, getattr(self, f.name))

    @classmethod
    def simple(
        cls,
        per_side: Decimal,
        *,
        per_side_color: Decimal | None = None,
        per_side_duplex: Decimal | None = None,
        per_side_duplex_color: Decimal | None = None,
    ) -> SidePrices:
        """Prices from the CLI's ``--per-side [--per-side-color] [--per-side-duplex]
        [--per-side-duplex-color]``.

        Each missing price falls back: colour to ``per_side``, duplex to ``per_side``, duplex
        colour to the colour price when one was given (a colour side never costs less because
        it is on a duplex sheet unless said so), otherwise to the duplex price.
        """
        color = per_side if per_side_color is None else per_side_color
        duplex = per_side if per_side_duplex is None else per_side_duplex
        if per_side_duplex_color is not None:
            duplex_color = per_side_duplex_color
        elif per_side_color is not None:
            duplex_color = per_side_color
        else:
            duplex_color = duplex
        return cls(
            one_sided_gray=per_side,
            one_sided_color=color,
            two_sided_gray=duplex,
            two_sided_color=duplex_color,
        )

    def per_side(self, *, duplex: bool, grayscale: bool) -> Decimal:
        """The price of one side."""
        if duplex:
            return self.two_sided_gray if grayscale else self.two_sided_color
        return self.one_sided_gray if grayscale else self.one_sided_color


@dataclass(frozen=True)
class CostModel:
    """A printer's prices: a default table and optional per-media tables.

    Attributes:
        default: prices for any media without its own entry.
        media: ``(media keyword, prices)`` pairs, kept sorted by keyword (``per_media`` takes
            a dict).
    """

    default: SidePrices
    media: tuple[tuple[str, SidePrices], ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.default, SidePrices):
            raise TypeError(f"CostModel.default must be SidePrices, not {self.default!r}")
        pairs = list(self.media)
        seen: set[str] = set()
        for name, prices in pairs:
            if not isinstance(name, str) or not name:
                raise InvalidInput(f"Media name {name!r} is not a media keyword")
            if name in seen:
                raise InvalidInput(f"Media '{name}' is priced twice")
            if not isinstance(prices, SidePrices):
                raise TypeError(f"Prices for media '{name}' must be SidePrices, not {prices!r}")
            seen.add(name)
        # Frozen: normalize through object.__setattr__, once, so equal models compare equal.
        object.__setattr__(self, "media", tuple(sorted(pairs, key=lambda pair: pair[0])))

    @classmethod
    def simple(cls, per_side: Decimal, **kwargs: Decimal | None) -> CostModel:
        """A model with one table for all media; see ``SidePrices.simple`` for the keywords."""
        return cls(default=SidePrices.simple(per_side, **kwargs))

    @classmethod
    def per_media(cls, default: SidePrices, media: Mapping[str, SidePrices]) -> CostModel:
        """A model with a default table and one table per media keyword."""
        return cls(default=default, media=tuple(media.items()))

    def prices_for(self, media: str | None) -> SidePrices:
        """The table for a media keyword, or the default table."""
        for name, prices in self.media:
            if name == media:
                return prices
        return self.default


def _sides_per_copy(pages: int, options: Mapping[str, str]) -> int:
    """Printed sides of one copy: selected pages, ``number-up`` to a side."""
    if isinstance(pages, bool) or not isinstance(pages, int) or pages < 0:
        raise ValueError(f"Page count must be an integer >= 0, not {pages!r}")
    selected = pages
    if "page-ranges" in options:
        selected = sum(
            max(0, min(last, pages) - first + 1)
            for first, last in parse_page_ranges(options["page-ranges"])
        )
    return -(-selected // _number_up(options))  # ceiling division without floats


def _number_up(options: Mapping[str, str]) -> int:
    return parse_positive_int("number-up", options.get("number-up", "1"), ())


def _colour_sides(page_colors: Sequence[bool], options: Mapping[str, str]) -> list[bool]:
    """Per printed side of one copy, whether it has colour: the selected pages in order,
    ``number-up`` to a side, a side colour when any of its pages is."""
    pages = len(page_colors)
    selected: list[bool] = list(page_colors)
    if "page-ranges" in options:
        selected = [
            page_colors[number - 1]
            for first, last in parse_page_ranges(options["page-ranges"])
            for number in range(first, min(last, pages) + 1)
        ]
    number_up = _number_up(options)
    return [any(selected[i : i + number_up]) for i in range(0, len(selected), number_up)]


def _copies(options: Mapping[str, str]) -> int:
    return parse_positive_int("copies", options.get("copies", "1"), ())


def count_sheets(pages: int, options: Mapping[str, str]) -> tuple[int, int]:
    """Return ``(sides, sheets)`` for a document of ``pages`` pages printed with ``options``.

    ``sides`` are printed sides (blank backs not counted), ``sheets`` physical sheets, both
    over all copies. Malformed option values raise ``OptionRejected``; unrelated options are
    ignored.
    """
    per_copy = _sides_per_copy(pages, options)
    sheets = -(-per_copy // 2) if is_duplex(options) else per_copy
    copies = _copies(options)
    return per_copy * copies, sheets * copies


def price(
    pages: int,
    options: Mapping[str, str],
    model: CostModel,
    *,
    page_colors: Sequence[bool] | None = None,
) -> Decimal:
    """The price of printing ``pages`` pages with ``options`` under ``model``, to 6 places.

    ``page_colors`` (one flag per page, True for colour) prices each side by its own pages
    when ``print-color-mode`` does not rule out colour; None prices every side as
    ``print-color-mode`` says (colour unless it rules colour out).
    """
    per_copy = _sides_per_copy(pages, options)
    prices = model.prices_for(options.get("media"))
    duplex = is_duplex(options)
    if is_grayscale(options) or page_colors is None:
        colour = [not is_grayscale(options)] * per_copy
    else:
        if len(page_colors) != pages:
            raise ValueError(f"{len(page_colors)} page colours for a document of {pages} pages")
        colour = _colour_sides(page_colors, options)
    # Every side of a full duplex sheet costs the two-sided price, the odd last side of a
    # duplex copy (and every side of a one-sided copy) the one-sided price.
    two_sided = per_copy - per_copy % 2 if duplex else 0
    copy_price = sum(
        (
            prices.per_side(duplex=index < two_sided, grayscale=not has_colour)
            for index, has_colour in enumerate(colour)
        ),
        start=Decimal(0),
    )
    total = copy_price * _copies(options)
    return total.quantize(PLACES, rounding=ROUND_HALF_UP)

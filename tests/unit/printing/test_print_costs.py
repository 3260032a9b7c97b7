"""Sheet counting and pricing: worked tables first, then properties that must always hold."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printsrv.errors import InvalidInput
from printsrv.printing.costs import CostModel, SidePrices, count_sheets, price
from printsrv.printing.errors import OptionRejected

D = Decimal
# Distinct prices so each one used shows in the total.
PRICES = SidePrices(
    one_sided_gray=D("0.10"),
    one_sided_color=D("0.50"),
    two_sided_gray=D("0.07"),
    two_sided_color=D("0.40"),
)
MODEL = CostModel.per_media(
    PRICES,
    {"iso_a3_297x420mm": SidePrices.simple(D("0.20"), per_side_color=D("1.00"))},
)
GRAY = {"print-color-mode": "monochrome"}
DUPLEX = {"sides": "two-sided-long-edge"}

# Hypothesis keeps no example database: the tests must not write files into the checkout.
props = settings(database=None, max_examples=200, deadline=None)


# -- worked examples ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pages", "options", "sides", "sheets"),
    [
        (0, {}, 0, 0),
        (1, {}, 1, 1),
        (3, {}, 3, 3),
        (3, DUPLEX, 3, 2),
        (3, {**DUPLEX, "copies": "2"}, 6, 4),  # CUPS reports 4 sheets for this job too
        (4, {**DUPLEX, "copies": "2"}, 8, 4),
        (5, {"number-up": "2"}, 3, 3),
        (5, {"number-up": "2", **DUPLEX}, 3, 2),
        (10, {"page-ranges": "2-4,9"}, 4, 4),
        (10, {"page-ranges": "2-4,9", "number-up": "4", **DUPLEX, "copies": "3"}, 3, 3),
        (3, {"page-ranges": "5-9"}, 0, 0),  # CUPS prints nothing for pages past the end
        (3, {"page-ranges": "2-9"}, 2, 2),
        (7, {"sides": "two-sided-short-edge"}, 7, 4),
        (7, {"sides": "one-sided", "copies": "10"}, 70, 70),
    ],
)
def test_count_sheets(pages: int, options: dict[str, str], sides: int, sheets: int) -> None:
    assert count_sheets(pages, options) == (sides, sheets)


@pytest.mark.parametrize(
    ("pages", "options", "expected"),
    [
        (1, GRAY, "0.100000"),
        (1, {}, "0.500000"),  # no colour mode: charged as colour
        (1, {"print-color-mode": "color"}, "0.500000"),
        (1, {"print-color-mode": "auto"}, "0.500000"),
        (4, {**GRAY, **DUPLEX}, "0.280000"),  # 2 sheets x 2 sides x 0.07
        (3, {**GRAY, **DUPLEX}, "0.240000"),  # 1 sheet x 2 x 0.07 + odd side at 0.10
        (3, {**GRAY, **DUPLEX, "copies": "2"}, "0.480000"),  # the odd side in every copy
        (3, {**DUPLEX}, "1.300000"),  # 2 x 0.40 + 0.50
        (5, {**GRAY, "number-up": "2"}, "0.300000"),  # 3 sides
        (10, {**GRAY, "page-ranges": "1-2,10"}, "0.300000"),
        (2, {**GRAY, "media": "iso_a3_297x420mm"}, "0.400000"),
        (2, {"media": "iso_a3_297x420mm", **DUPLEX}, "2.000000"),  # A3 duplex colour = colour
        (2, {**GRAY, "media": "iso_a5_148x210mm"}, "0.200000"),  # no A5 table: default
        (0, {}, "0.000000"),
    ],
)
def test_price(pages: int, options: dict[str, str], expected: str) -> None:
    result = price(pages, options, MODEL)
    assert result == D(expected)
    assert str(result) == expected  # always six places, ready for the ledger


def test_simple_prices_fall_back_sensibly() -> None:
    only = SidePrices.simple(D("0.05"))
    assert {only.one_sided_color, only.two_sided_gray, only.two_sided_color} == {D("0.05")}
    colour = SidePrices.simple(D("0.05"), per_side_color=D("0.30"), per_side_duplex=D("0.04"))
    assert (colour.two_sided_gray, colour.two_sided_color) == (D("0.04"), D("0.30"))
    duplex = SidePrices.simple(D("0.05"), per_side_duplex=D("0.04"))
    assert duplex.two_sided_color == D("0.04")
    assert CostModel.simple(D("0.05")).default == only


@pytest.mark.parametrize("bad", [0.1, 1, "0.10", None])
def test_prices_must_be_decimal(bad: object) -> None:
    with pytest.raises(TypeError, match="Decimal"):
        SidePrices.simple(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("-0.01", "negative"),
        ("NaN", "finite"),
        ("Infinity", "finite"),
        ("0.0000001", "6 decimal places"),
        ("1000001", "more than"),
    ],
)
def test_prices_out_of_range_are_refused(bad: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as caught:
        SidePrices.simple(D(bad))
    assert bad in str(caught.value)


def test_trailing_zeros_beyond_six_places_are_fine() -> None:
    assert SidePrices.simple(D("0.1000000000")).one_sided_gray == D("0.1")


def test_media_priced_twice_is_refused() -> None:
    with pytest.raises(InvalidInput, match="priced twice"):
        CostModel(PRICES, (("iso_a4_210x297mm", PRICES), ("iso_a4_210x297mm", PRICES)))


def test_media_tables_compare_equal_in_any_order() -> None:
    a = CostModel.per_media(PRICES, {"a": PRICES, "b": MODEL.default})
    b = CostModel.per_media(PRICES, {"b": MODEL.default, "a": PRICES})
    assert a == b


@pytest.mark.parametrize("options", [{"copies": "0"}, {"number-up": "x"}, {"page-ranges": "3-1"}])
def test_malformed_options_are_refused(options: dict[str, str]) -> None:
    with pytest.raises(OptionRejected):
        count_sheets(3, options)


@pytest.mark.parametrize("pages", [-1, True, 1.0])
def test_page_count_must_be_a_natural_number(pages: object) -> None:
    with pytest.raises(ValueError, match="Page count"):
        count_sheets(pages, {})  # type: ignore[arg-type]


# -- properties -----------------------------------------------------------------------------

money = st.decimals(min_value=0, max_value=100, places=6, allow_nan=False, allow_infinity=False)
side_prices = st.builds(SidePrices, money, money, money, money)
pages_st = st.integers(min_value=0, max_value=500)
copies_st = st.integers(min_value=1, max_value=50)


@st.composite
def page_ranges(draw: st.DrawFn) -> str:
    """Ascending, non-overlapping ranges, as validate_options lets through."""
    ranges, start = [], 1
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        first = start + draw(st.integers(min_value=0, max_value=20))
        last = first + draw(st.integers(min_value=0, max_value=20))
        ranges.append(f"{first}-{last}")
        start = last + 1
    return ",".join(ranges)


@st.composite
def job_options(draw: st.DrawFn) -> dict[str, str]:
    options: dict[str, str] = {}
    if draw(st.booleans()):
        options["sides"] = draw(
            st.sampled_from(["one-sided", "two-sided-long-edge", "two-sided-short-edge"])
        )
    if draw(st.booleans()):
        options["print-color-mode"] = draw(st.sampled_from(["monochrome", "color", "auto"]))
    if draw(st.booleans()):
        options["number-up"] = str(draw(st.sampled_from([1, 2, 4, 6, 9, 16])))
    if draw(st.booleans()):
        options["page-ranges"] = draw(page_ranges())
    if draw(st.booleans()):
        options["media"] = draw(st.sampled_from(["iso_a4_210x297mm", "iso_a3_297x420mm"]))
    return options


@props
@given(pages=pages_st, options=job_options(), copies=copies_st, prices=side_prices)
def test_price_and_sheets_grow_with_copies(
    pages: int, options: dict[str, str], copies: int, prices: SidePrices
) -> None:
    model = CostModel(prices)
    fewer = {**options, "copies": str(copies)}
    more = {**options, "copies": str(copies + 1)}
    assert price(pages, more, model) >= price(pages, fewer, model)
    assert count_sheets(pages, more) >= count_sheets(pages, fewer)


@props
@given(pages=pages_st, options=job_options(), copies=copies_st, prices=side_prices)
def test_price_is_linear_in_copies(
    pages: int, options: dict[str, str], copies: int, prices: SidePrices
) -> None:
    model = CostModel(prices)
    one = price(pages, {**options, "copies": "1"}, model)
    assert price(pages, {**options, "copies": str(copies)}, model) == one * copies


@props
@given(pages=pages_st, options=job_options())
def test_duplex_never_uses_more_sheets_than_simplex(pages: int, options: dict[str, str]) -> None:
    simplex_sides, simplex_sheets = count_sheets(pages, {**options, "sides": "one-sided"})
    duplex_sides, duplex_sheets = count_sheets(pages, {**options, **DUPLEX})
    assert duplex_sides == simplex_sides
    assert duplex_sheets <= simplex_sheets
    assert duplex_sheets >= (simplex_sheets + 1) // 2


@props
@given(pages=pages_st, options=job_options())
def test_sheets_never_exceed_sides_and_sides_never_exceed_pages(
    pages: int, options: dict[str, str]
) -> None:
    sides, sheets = count_sheets(pages, {**options, "copies": "1"})
    assert 0 <= sheets <= sides <= pages


@props
@given(pages=pages_st, options=job_options())
def test_more_pages_per_side_never_uses_more_sheets(pages: int, options: dict[str, str]) -> None:
    counts = [count_sheets(pages, {**options, "number-up": str(n)}) for n in (1, 2, 4, 16)]
    assert counts == sorted(counts, reverse=True)


@props
@given(pages=pages_st, options=job_options(), prices=side_prices)
def test_grayscale_never_costs_more_when_gray_prices_are_lower(
    pages: int, options: dict[str, str], prices: SidePrices
) -> None:
    cheap_gray = SidePrices(
        one_sided_gray=min(prices.one_sided_gray, prices.one_sided_color),
        one_sided_color=prices.one_sided_color,
        two_sided_gray=min(prices.two_sided_gray, prices.two_sided_color),
        two_sided_color=prices.two_sided_color,
    )
    model = CostModel(cheap_gray)
    gray = price(pages, {**options, "print-color-mode": "monochrome"}, model)
    colour = price(pages, {**options, "print-color-mode": "color"}, model)
    assert gray <= colour


@props
@given(pages=pages_st, options=job_options(), prices=side_prices)
def test_price_is_a_sum_of_side_prices(
    pages: int, options: dict[str, str], prices: SidePrices
) -> None:
    sides, _ = count_sheets(pages, options)
    result = price(pages, options, CostModel(prices))
    values = [getattr(prices, name) for name in SidePrices.__dataclass_fields__]
    assert min(values) * sides <= result <= max(values) * sides
    assert result == result.quantize(D("0.000001"))
    assert result.as_tuple().exponent == -6


@props
@given(pages=pages_st, options=job_options())
def test_free_printing_is_free(pages: int, options: dict[str, str]) -> None:
    assert price(pages, options, CostModel.simple(D("0"))) == D("0")

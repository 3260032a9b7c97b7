"""financial.money: the one door for amounts."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from financial.errors import InvalidAmount
from financial.money import ZERO, money, parse_wire_amount, to_wire

amounts = st.decimals(
    min_value=Decimal("-999999999999.999999"),
    max_value=Decimal("999999999999.999999"),
    places=6,
    allow_nan=False,
    allow_infinity=False,
)


@given(amounts)
def test_wire_form_round_trips(amount: Decimal) -> None:
    wire = to_wire(amount)
    assert parse_wire_amount(wire) == amount
    assert money(wire) == amount
    assert "e" not in wire.lower()
    assert len(wire.split(".")[1]) == 6


@given(amounts)
def test_money_keeps_the_value_and_gives_six_places(amount: Decimal) -> None:
    value = money(amount)
    assert value == amount
    assert value.as_tuple().exponent == -6


@given(st.floats())
def test_floats_are_always_refused(value: float) -> None:
    with pytest.raises(InvalidAmount, match="float"):
        money(value)


@given(st.integers(min_value=-(10**12) + 1, max_value=10**12 - 1))
def test_integers_are_accepted(value: int) -> None:
    assert money(value) == value


@given(st.from_regex(r"\A-?[0-9]{1,6}(\.[0-9]{1,6})?[eE][+-]?[0-9]{1,3}\Z", fullmatch=True))
def test_exponent_notation_is_refused(text: str) -> None:
    with pytest.raises(InvalidAmount, match="not a decimal number"):
        parse_wire_amount(text)


@pytest.mark.parametrize("text", ["NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf"])
def test_nan_and_infinity_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidAmount, match=f"'{text}'"):
        money(text)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_nan_and_infinity_decimals_are_refused(value: Decimal) -> None:
    with pytest.raises(InvalidAmount, match="not a finite number"):
        money(value)


def test_float_nan_is_refused_as_a_float() -> None:
    with pytest.raises(InvalidAmount, match="float"):
        money(math.nan)


def test_seven_decimal_places_are_refused_with_the_value_quoted() -> None:
    with pytest.raises(InvalidAmount) as caught:
        money("9.2600001")
    assert str(caught.value) == "Amount '9.2600001' has more than 6 decimal places"


def test_a_decimal_with_seven_places_is_refused() -> None:
    with pytest.raises(InvalidAmount, match="more than 6 decimal places"):
        money(Decimal("0.0000001"))


def test_trailing_zeros_beyond_six_places_in_a_decimal_are_harmless() -> None:
    assert money(Decimal("1.50000000")) == Decimal("1.5")


@pytest.mark.parametrize("text", ["", " 1", "1 ", "+1", "1.", ".5", "1,5", "1e3", "0x10", "١"])
def test_malformed_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidAmount, match="Amount '"):
        parse_wire_amount(text)


def test_empty_text_says_it_is_empty() -> None:
    with pytest.raises(InvalidAmount, match="is empty"):
        money("")


@pytest.mark.parametrize("value", ["1000000000000", "-1000000000000.5", 10**12, 10**30])
def test_more_than_twelve_integer_digits_are_refused(value: str | int) -> None:
    with pytest.raises(InvalidAmount, match="more than 12 integer digits"):
        money(value)


def test_very_long_text_is_refused_without_parsing_it() -> None:
    with pytest.raises(InvalidAmount, match="too long"):
        money("1" * 10_000)


@pytest.mark.parametrize("value", [True, False, None, [1], b"1"])
def test_other_types_are_refused(value: object) -> None:
    with pytest.raises(InvalidAmount):
        money(value)  # type: ignore[arg-type]


def test_parse_wire_amount_wants_text() -> None:
    with pytest.raises(InvalidAmount, match="not text"):
        parse_wire_amount(Decimal("1"))  # type: ignore[arg-type]


def test_to_wire_renders_six_decimals() -> None:
    assert to_wire(Decimal("9.26")) == "9.260000"
    assert to_wire(Decimal("-2.5")) == "-2.500000"
    assert to_wire(15) == "15.000000"
    assert to_wire(Decimal("1E+3")) == "1000.000000"


def test_negative_zero_renders_as_zero() -> None:
    assert to_wire(Decimal("-0")) == "0.000000"
    assert to_wire(money("-0.000000")) == "0.000000"
    assert str(money("-0")) == "0.000000"


def test_zero_constant() -> None:
    assert ZERO == 0
    assert to_wire(ZERO) == "0.000000"

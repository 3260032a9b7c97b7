"""Money: the one door through which amounts enter the accounting core.

Every amount is a :class:`decimal.Decimal` with exactly six decimal places, made by
:func:`money` (as beancount makes numbers with ``D()``). Floating point is never used:
``money(0.1)`` is refused rather than silently turned into 0.1000000000000000055...

- :func:`money` accepts ``str``, ``int`` or ``Decimal`` and returns the amount quantized
  to six places, or raises :class:`~financial.errors.InvalidAmount` quoting the input.
- :func:`parse_wire_amount` is the strict form for text from outside (URL parameters,
  JSON strings): an optional ``-``, ASCII digits, optionally ``.`` and one to six digits.
- :func:`to_wire` renders an amount as the wire does: ``"9.260000"``.
- :data:`ZERO` is the zero amount; use it instead of literals.

Amounts are limited to twelve integer digits, which is what the ledger stores
(``NUMERIC(18, 6)``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from financial.errors import InvalidAmount

__all__ = ["MAX_INTEGER_DIGITS", "PLACES", "ZERO", "money", "parse_wire_amount", "to_wire"]

PLACES = 6
"""Decimal places of every amount."""

MAX_INTEGER_DIGITS = 12
"""Integer digits an amount may have (the ledger stores NUMERIC(18, 6))."""

_QUANTUM = Decimal(1).scaleb(-PLACES)
_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS
_MAX_TEXT = 1 + MAX_INTEGER_DIGITS + 1 + PLACES + 8  # sign, digits, point, leading zeros
_WIRE = re.compile(r"-?[0-9]+(?:\.([0-9]+))?")

ZERO = Decimal(0).quantize(_QUANTUM)
"""The zero amount, ``Decimal('0.000000')``."""


def money(value: str | int | Decimal) -> Decimal:
    """Return ``value`` as an exact amount with six decimal places.

    Accepts a ``str`` in the wire form (see :func:`parse_wire_amount`), an ``int`` or a
    finite ``Decimal`` whose value needs at most six decimal places. Refuses floats,
    booleans, NaN, Infinity, exponents (``"1e3"``), empty strings, more than six decimal
    places and more than twelve integer digits with :class:`InvalidAmount` quoting the
    input. ``-0`` becomes :data:`ZERO`.
    """
    if isinstance(value, bool):
        raise InvalidAmount(f"Amount {value!r} is a boolean, not an amount")
    if isinstance(value, float):
        raise InvalidAmount(f"Amount {value!r} is a float: use a str, int or Decimal")
    if isinstance(value, str):
        number = _parse_text(value)
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidAmount(f"Amount '{value}' is not a finite number")
        number = value
    else:
        raise InvalidAmount(f"Amount {value!r} is a {type(value).__name__}, not an amount")
    return _checked(number, value)


def parse_wire_amount(text: str) -> Decimal:
    """Return the amount written in ``text``, which must be in the strict wire form.

    The form is an optional leading ``-``, one or more ASCII digits, and optionally a
    ``.`` followed by one to six digits: ``"2.50"``, ``"-15"``, ``"9.260000"``. No sign
    ``+``, no spaces, no exponent, no ``NaN``/``Infinity``. Raises :class:`InvalidAmount`.
    """
    if not isinstance(text, str):
        raise InvalidAmount(f"Amount {text!r} is a {type(text).__name__}, not text")
    return _checked(_parse_text(text), text)


def to_wire(amount: Decimal) -> str:
    """Render ``amount`` with exactly six decimals and no exponent: ``"9.260000"``.

    ``-0`` renders as ``"0.000000"``. Raises :class:`InvalidAmount` for anything
    :func:`money` refuses.
    """
    return format(money(amount), "f")


def _parse_text(text: str) -> Decimal:
    if len(text) > _MAX_TEXT:
        raise InvalidAmount(f"Amount '{text[:_MAX_TEXT]}...' is too long")
    match = _WIRE.fullmatch(text)
    if match is None:
        if text == "":
            raise InvalidAmount("Amount '' is empty")
        raise InvalidAmount(
            f"Amount '{text}' is not a decimal number like '2.50' or '-15' "
            "(no exponent, sign '+', spaces, NaN or Infinity)"
        )
    fraction = match.group(1)
    if fraction is not None and len(fraction) > PLACES:
        raise InvalidAmount(f"Amount '{text}' has more than {PLACES} decimal places")
    return Decimal(text)


def _checked(number: Decimal, original: object) -> Decimal:
    shown = original if isinstance(original, str) else str(original)
    if abs(number) >= _LIMIT:
        raise InvalidAmount(f"Amount '{shown}' has more than {MAX_INTEGER_DIGITS} integer digits")
    try:
        exact = number.quantize(_QUANTUM)
    except InvalidOperation as exc:  # pragma: no cover - guarded by the limit above
        raise InvalidAmount(f"Amount '{shown}' cannot be represented") from exc
    if exact != number:
        raise InvalidAmount(f"Amount '{shown}' has more than {PLACES} decimal places")
    if exact == 0:
        return ZERO
    return exact

"""Reading JSON numbers with a fraction or an exponent as Decimal, refusing what cannot be one.

`json.loads(..., parse_float=Decimal)` keeps money exact, but `Decimal("1e99999999999999999999")`
raises `decimal.InvalidOperation`, an ArithmeticError that no JSON caller expects: found by
fuzzing the JSON-RPC adapter, where it escaped as a 500 without the envelope. As
`parse_float=decimal_number` it is a ValueError, like every other malformed JSON.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = ["decimal_number"]


def decimal_number(text: str) -> Decimal:
    """The JSON number `text` as a Decimal; ValueError when its exponent is out of range."""
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"the number {text[:20]}... is out of range") from None

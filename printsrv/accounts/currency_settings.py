"""The config properties that hold amounts in the base currency, scaled when it changes.

`changeBaseCurrency` restates every balance at a rate; the amounts in the config
(`financial.credit-limit.default`, the transfer minimum and maximum: every property of kind
"amount") are in that currency too, and are scaled at the same rate, in the same
transaction, so that "a transfer of at most 100 EUR" becomes "at most 108 USD" and not
"at most 100 USD".
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from financial.currency import CurrencyChange, convert_amount
from financial.errors import InvalidAmount
from financial.money import to_wire
from printsrv import errors
from printsrv.platform import properties as config_service
from printsrv.platform.security import SecretHasher

__all__ = ["BaseCurrencyChange", "ScaledProperty", "scale_amount_properties"]


@dataclass(frozen=True)
class ScaledProperty:
    """One amount property before and after a change of currency (`after` = `before` x rate)."""

    name: str
    before: Decimal
    after: Decimal


@dataclass(frozen=True)
class BaseCurrencyChange:
    """A change of base currency, planned or done: the accounts and the config amounts."""

    accounts: CurrencyChange
    properties: tuple[ScaledProperty, ...]

    def summary(self, *, done: bool) -> str:
        """The accounts' one line, then each amount property that changes."""
        text = self.accounts.summary(done=done)
        changed = [p for p in self.properties if p.before != p.after]
        if not changed:
            return text
        scaled = ", ".join(f"{p.name} {to_wire(p.before)} -> {to_wire(p.after)}" for p in changed)
        return f"{text}; {'scaled' if done else 'would scale'} {scaled}"


def amount_properties() -> tuple[str, ...]:
    """The names of every config property that holds an amount of money."""
    return tuple(p.name for p in config_service.PROPERTIES if p.kind == "amount")


def scale_amount_properties(
    session: Session, *, rate: Decimal, hasher: SecretHasher, actor: str, dry_run: bool
) -> tuple[ScaledProperty, ...]:
    """Multiply every amount property (its stored value, or its default) by `rate`.

    Rounded as balances are (`financial.currency.convert_amount`) and stored through
    `set_property`, in the caller's transaction, unless `dry_run`. InvalidInput naming
    `exchangeRate` and the property when a scaled value would be refused (too large, or a
    transfer maximum that rounds to zero): nothing is written then.
    """
    scaled = []
    for name in amount_properties():
        before = config_service.read_property(session, name)
        try:
            after = convert_amount(before, rate)
            config_service.get_definition(name).normalise(to_wire(after))
        except (InvalidAmount, ValueError) as error:
            reason = error.message if isinstance(error, InvalidAmount) else str(error)
            raise errors.InvalidInput(
                f"Parameter 'exchangeRate': {name} {to_wire(before)} x {rate} would be "
                f"refused: {reason}",
                reason="exchangeRate",
            ) from None
        scaled.append(ScaledProperty(name, before, after))
    if not dry_run:
        for prop in scaled:
            if prop.after != prop.before:
                config_service.set_property(
                    session, prop.name, to_wire(prop.after), hasher=hasher, actor=actor
                )
    return tuple(scaled)

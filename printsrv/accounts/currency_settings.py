"""The config properties that hold amounts in the base currency, scaled when it changes.

`changeBaseCurrency` restates every balance at a rate; the amounts in the config
(`financial.credit-limit.default`, the transfer minimum and maximum: every property of kind
"amount") are in that currency too, and are scaled at the same rate, in the same
transaction, so that "a transfer of at most 100 EUR" becomes "at most 108 USD" and not
"at most 100 USD".

So are the other amounts stored in that currency (`scale_stored_amounts`): each group's
defaults for new members (initial credit, INDIVIDUAL credit limit), each group's quota
(amount, max-accumulation), each printer's prices, and the quoted cost of a print still
waiting for approval (it is priced again at approval, at the scaled prices, but the
approver reads the quote meanwhile). History is not restated: ledger rows, the cost of a
print job, and the cost of a decided (refused, approved, denied) print stay as they were,
in the currency they were charged in.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from financial.currency import CurrencyChange, convert_amount
from financial.errors import InvalidAmount
from financial.money import to_wire
from printsrv import errors
from printsrv.accounts.models import QUOTA_LOCK, GroupQuota
from printsrv.people.models import UserGroup
from printsrv.platform import properties as config_service
from printsrv.platform.database import serialise_on
from printsrv.platform.security import SecretHasher
from printsrv.printing.costs import CostModel, SidePrices
from printsrv.printing.models import Printer, RuledPrint
from printsrv.printing.printers import cost_from_json, cost_to_json

__all__ = [
    "BaseCurrencyChange",
    "ScaledProperty",
    "StoredAmounts",
    "scale_amount_properties",
    "scale_stored_amounts",
]


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
    amounts: tuple[ScaledProperty, ...] = ()
    """The other stored amounts (`scale_stored_amounts`), printers' prices excepted."""
    printers: tuple[str, ...] = ()
    """The printers whose prices were (or would be) scaled."""

    def summary(self, *, done: bool) -> str:
        """The accounts' one line, then each amount that changes, then the printers."""
        text = self.accounts.summary(done=done)
        changed = [p for p in (*self.properties, *self.amounts) if p.before != p.after]
        parts = [f"{p.name} {to_wire(p.before)} -> {to_wire(p.after)}" for p in changed]
        parts += [f"printer {name} prices" for name in self.printers]
        if not parts:
            return text
        return f"{text}; {'scaled' if done else 'would scale'} {', '.join(parts)}"


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


@dataclass(frozen=True)
class StoredAmounts:
    """What `scale_stored_amounts` scaled (or would): the amounts, and the printers priced."""

    amounts: tuple[ScaledProperty, ...]
    printers: tuple[str, ...]


def _refused(name: str, before: Decimal, rate: Decimal, reason: str) -> errors.InvalidInput:
    return errors.InvalidInput(
        f"Parameter 'exchangeRate': {name} {to_wire(before)} x {rate} would be refused: {reason}",
        reason="exchangeRate",
    )


def _convert(name: str, before: Decimal, rate: Decimal, *, positive: bool = False) -> Decimal:
    try:
        after = convert_amount(before, rate)
    except InvalidAmount as error:
        raise _refused(name, before, rate, error.message) from None
    if positive and after <= 0:
        raise _refused(name, before, rate, "it must stay above zero")
    return after


def _scaled_prices(name: str, model: CostModel, rate: Decimal) -> CostModel:
    def scaled(prices: SidePrices) -> SidePrices:
        values = vars(prices)
        try:
            return SidePrices(**{key: convert_amount(value, rate) for key, value in values.items()})
        except (InvalidAmount, errors.InvalidInput) as error:
            reason = error.message if isinstance(error, InvalidAmount) else str(error)
            raise _refused(f"printer {name} prices", max(values.values()), rate, reason) from None

    return CostModel(
        default=scaled(model.default),
        media=tuple((media, scaled(prices)) for media, prices in model.media),
    )


def scale_stored_amounts(session: Session, *, rate: Decimal, dry_run: bool) -> StoredAmounts:
    """Multiply every amount stored in the base currency outside accounts and config by `rate`.

    Group defaults (initial credit, credit limit), group quotas (amount, max-accumulation),
    printers' prices and waiting prints' quoted costs; each rounded as balances are
    (`financial.currency.convert_amount`, six places, half to even), in the caller's
    transaction, unless `dry_run`. Everything is computed before anything is written, and
    InvalidInput (reason `exchangeRate`) names the first amount that would be refused: one
    too large for its column or price table, or a quota that would round to zero. Holds the
    quota allocator's lock, so no quota is credited at the old amount after the change.
    """
    amounts: list[ScaledProperty] = []
    groups: list[tuple[UserGroup, Decimal | None, Decimal | None]] = []
    for group in session.scalars(select(UserGroup).order_by(UserGroup.name)):
        initial = credit_limit = None
        if group.initial_credit is not None:
            name = f"group {group.name} initial credit"
            initial = _convert(name, group.initial_credit, rate)
            amounts.append(ScaledProperty(name, group.initial_credit, initial))
        if group.credit_limit is not None:
            name = f"group {group.name} credit limit"
            credit_limit = _convert(name, group.credit_limit, rate)
            amounts.append(ScaledProperty(name, group.credit_limit, credit_limit))
        groups.append((group, initial, credit_limit))

    if not dry_run:
        serialise_on(session, QUOTA_LOCK)
    quota_rows = session.execute(
        select(GroupQuota, UserGroup.name)
        .join(UserGroup, UserGroup.id == GroupQuota.group_id)
        .order_by(UserGroup.name)
    ).all()
    quotas: list[tuple[GroupQuota, Decimal, Decimal | None]] = []
    for quota, group_name in quota_rows:
        name = f"group {group_name} quota"
        amount = _convert(name, quota.amount, rate, positive=True)
        amounts.append(ScaledProperty(name, quota.amount, amount))
        cap = None
        if quota.max_accumulation is not None:
            cap_name = f"group {group_name} quota max-accumulation"
            cap = _convert(cap_name, quota.max_accumulation, rate)
            amounts.append(ScaledProperty(cap_name, quota.max_accumulation, cap))
        quotas.append((quota, amount, cap))

    printers: list[tuple[Printer, CostModel]] = []
    for printer in session.scalars(select(Printer).order_by(Printer.name)):
        model = cost_from_json(printer.cost_model)
        if model is not None:
            printers.append((printer, _scaled_prices(printer.name, model, rate)))

    # Only a waiting print's cost is a quote in today's currency; a decided one is history.
    waiting = list(
        session.scalars(
            select(RuledPrint).where(RuledPrint.state == "waiting").order_by(RuledPrint.id)
        )
    )
    waiting_costs: list[Decimal] = []
    for ruled in waiting:
        name = f"waiting print {ruled.id} cost"
        cost = _convert(name, ruled.cost, rate)
        amounts.append(ScaledProperty(name, ruled.cost, cost))
        waiting_costs.append(cost)

    if not dry_run:
        for group, initial, credit_limit in groups:
            if initial is not None:
                group.initial_credit = initial
            if credit_limit is not None:
                group.credit_limit = credit_limit
        for quota, amount, cap in quotas:
            quota.amount, quota.max_accumulation = amount, cap
        for printer, scaled_model in printers:
            printer.cost_model = cost_to_json(scaled_model)
        for ruled, cost in zip(waiting, waiting_costs, strict=True):
            ruled.cost = cost
        session.flush()
    return StoredAmounts(tuple(amounts), tuple(printer.name for printer, _ in printers))

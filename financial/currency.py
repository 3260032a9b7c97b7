"""Changing the currency every amount is in: exchange rates and the conversion of accounts.

A change of base currency restates every account in the new currency. For each account
with a non-zero balance the ledger gets two ADJUST rows: one taking the balance to zero
in the old currency, one bringing it to ``balance x rate`` in the new one. Individual
credit limits are scaled by the same rate. Balance and ledger sum stay equal throughout,
so :func:`financial.checks.verify` holds afterwards.

- :func:`parse_rate` is the one door for exchange rates (strict text, positive).
- :func:`convert_amount` is the one rounding rule: six places, half to even.
- :func:`plan_change` works out, without writing anything, what a change would do.
- :func:`change_currency` locks the accounts, plans, and (unless asked for a dry run)
  writes the ledger rows and credit limits in the caller's transaction.

Which currency the installation is in is the application's business (a config
property); this module only knows the two codes it is told, for comments and messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from financial.accounts import Actor, set_credit_limit
from financial.errors import InvalidAmount
from financial.ledger import adjust_balance
from financial.money import MAX_INTEGER_DIGITS, PLACES, ZERO, to_wire
from financial.schema import Account, CreditLimitPolicy

__all__ = [
    "RATE_PLACES",
    "AccountConversion",
    "CurrencyChange",
    "change_currency",
    "convert_amount",
    "parse_rate",
    "plan_change",
]

RATE_PLACES = 12
"""Decimal places an exchange rate may have (rates are often quoted to 6-10 places)."""

_QUANTUM = Decimal(1).scaleb(-PLACES)
_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS
_RATE = re.compile(r"[0-9]+(?:\.([0-9]+))?")
_MAX_RATE_TEXT = MAX_INTEGER_DIGITS + 1 + RATE_PLACES + 8  # digits, point, leading zeros
# An amount has at most 18 significant digits and a rate at most 24, so their product is
# exact with 42; the default context (28 digits) would round before we quantize.
_PRECISION = 60


def parse_rate(value: str) -> Decimal:
    """Return the exchange rate written in ``value``: how many new units one old unit is.

    The text is ASCII digits, optionally ``.`` and one to twelve digits: ``"1.08"``,
    ``"0.9259259"``. Refuses anything else (exponents such as ``"1e3"``, ``NaN``,
    ``Infinity``, signs, spaces, the empty string), more than twelve integer digits, and
    zero, each with :class:`InvalidAmount` quoting the input.
    """
    if not isinstance(value, str):
        raise InvalidAmount(f"Exchange rate {value!r} is a {type(value).__name__}, not text")
    if value == "":
        raise InvalidAmount("Exchange rate '' is empty")
    if len(value) > _MAX_RATE_TEXT:
        raise InvalidAmount(f"Exchange rate '{value[:_MAX_RATE_TEXT]}...' is too long")
    match = _RATE.fullmatch(value)
    if match is None:
        raise InvalidAmount(
            f"Exchange rate '{value}' is not a positive decimal number like '1.08' "
            "(no exponent, sign, spaces, NaN or Infinity)"
        )
    fraction = match.group(1)
    if fraction is not None and len(fraction) > RATE_PLACES:
        raise InvalidAmount(f"Exchange rate '{value}' has more than {RATE_PLACES} decimal places")
    rate = Decimal(value)
    if rate >= _LIMIT:
        raise InvalidAmount(
            f"Exchange rate '{value}' has more than {MAX_INTEGER_DIGITS} integer digits"
        )
    if rate == 0:
        raise InvalidAmount(f"Exchange rate '{value}' is zero: it must be positive")
    return rate


def convert_amount(amount: Decimal, rate: Decimal) -> Decimal:
    """Return ``amount x rate`` rounded to six places, half to even.

    Half-to-even (banker's rounding) because a conversion rounds thousands of balances
    at once: rounding halves always up would bias the total upwards by up to half a
    micro-unit per account, while half-to-even rounds as often down as up, so the new
    total stays closest to the old total x rate. Raises :class:`InvalidAmount` when the
    result has more than twelve integer digits (the ledger could not store it).
    """
    with localcontext() as context:
        context.prec = _PRECISION
        converted = (amount * rate).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    if abs(converted) >= _LIMIT:
        raise InvalidAmount(
            f"Amount '{to_wire(amount)}' x rate '{rate}' has more than "
            f"{MAX_INTEGER_DIGITS} integer digits"
        )
    return ZERO if converted == 0 else converted


@dataclass(frozen=True, slots=True)
class AccountConversion:
    """What a change of currency does to one account.

    Attributes:
        account_id: the account's id.
        label: ``TYPE/name``, for messages.
        balance_before: the balance in the old currency.
        balance_after: ``balance_before x rate``, rounded (:func:`convert_amount`).
        credit_limit_before: the INDIVIDUAL credit limit in the old currency, else None.
        credit_limit_after: that limit x rate, rounded, else None.
    """

    account_id: int
    label: str
    balance_before: Decimal
    balance_after: Decimal
    credit_limit_before: Decimal | None
    credit_limit_after: Decimal | None


@dataclass(frozen=True, slots=True)
class CurrencyChange:
    """A change of base currency, planned or done.

    Attributes:
        source: the old ISO 4217 code.
        target: the new ISO 4217 code.
        rate: new units per old unit.
        accounts: one entry per account whose balance or INDIVIDUAL credit limit changes,
            in account id order.
    """

    source: str
    target: str
    rate: Decimal
    accounts: tuple[AccountConversion, ...]

    @property
    def comment(self) -> str:
        """The comment of every ledger row the change writes."""
        return f"Base currency {self.source} -> {self.target} at {self.rate}"

    @property
    def converted(self) -> tuple[AccountConversion, ...]:
        """The accounts whose balance is converted (a non-zero balance)."""
        return tuple(a for a in self.accounts if a.balance_before != 0)

    @property
    def total_before(self) -> Decimal:
        """The sum of all balances in the old currency."""
        return sum((a.balance_before for a in self.accounts), ZERO)

    @property
    def total_after(self) -> Decimal:
        """The sum of all balances in the new currency (each rounded on its own)."""
        return sum((a.balance_after for a in self.accounts), ZERO)

    def summary(self, *, done: bool) -> str:
        """One line for people: ``3 accounts converted, total 10.000000 EUR -> ...``."""
        count = len(self.converted)
        verb = "converted" if done else "would be converted"
        noun = "account" if count == 1 else "accounts"
        return (
            f"{count} {noun} {verb}, total {to_wire(self.total_before)} {self.source} -> "
            f"{to_wire(self.total_after)} {self.target} at {self.rate}"
        )


def plan_change(
    accounts: Iterable[Account], *, source: str, target: str, rate: Decimal
) -> CurrencyChange:
    """Work out what changing from ``source`` to ``target`` at ``rate`` does; write nothing.

    Accounts with a zero balance and no INDIVIDUAL credit limit are left out. Raises
    :class:`InvalidAmount` when a converted amount would not fit the ledger.
    """
    conversions = []
    for account in sorted(accounts, key=lambda a: a.id):
        limit = (
            account.credit_limit
            if account.credit_limit_policy == CreditLimitPolicy.INDIVIDUAL
            else None
        )
        if account.balance == 0 and limit is None:
            continue
        conversions.append(
            AccountConversion(
                account_id=account.id,
                label=account.label,
                balance_before=account.balance,
                balance_after=convert_amount(account.balance, rate),
                credit_limit_before=limit,
                credit_limit_after=convert_amount(limit, rate) if limit is not None else None,
            )
        )
    return CurrencyChange(source=source, target=target, rate=rate, accounts=tuple(conversions))


def change_currency(
    session: Session,
    *,
    source: str,
    target: str,
    rate: Decimal,
    actor: Actor,
    dry_run: bool = False,
) -> CurrencyChange:
    """Restate every account from ``source`` to ``target`` at ``rate``; return the change.

    For each account with a non-zero balance: an ADJUST row of ``-balance`` (zero in the
    old currency), then an ADJUST row of ``balance x rate`` (none when that rounds to
    zero). INDIVIDUAL credit limits are scaled by ``rate``. Everything happens in the
    caller's transaction, which must be open; with ``dry_run`` nothing is written or locked.

    Unless ``dry_run``, the whole ``account`` table is locked first (PostgreSQL: ``SHARE
    ROW EXCLUSIVE``, which waits for running charges and transfers and holds new ones back;
    SQLite already serialises writers), so no balance can move in the old currency after
    it was read, and two changes cannot interleave.
    """
    if not dry_run and session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"LOCK TABLE {Account.__tablename__} IN SHARE ROW EXCLUSIVE MODE"))
    accounts = session.scalars(
        select(Account).order_by(Account.id).execution_options(populate_existing=True)
    )
    change = plan_change(accounts, source=source, target=target, rate=rate)
    if dry_run:
        return change
    for conversion in change.accounts:
        account = session.get_one(Account, conversion.account_id)
        if conversion.balance_before != 0:
            adjust_balance(
                session,
                account=account,
                amount=-conversion.balance_before,
                comment=change.comment,
                actor=actor,
            )
            if conversion.balance_after != 0:
                adjust_balance(
                    session,
                    account=account,
                    amount=conversion.balance_after,
                    comment=change.comment,
                    actor=actor,
                )
        if conversion.credit_limit_after is not None:
            set_credit_limit(
                session, account, CreditLimitPolicy.INDIVIDUAL, conversion.credit_limit_after
            )
    return change

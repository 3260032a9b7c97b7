"""What the user's page shows of their account: balance and latest transactions.

The one place the web app reads accounts, through `printsrv.accounts.service` (which maps user
names through the aliases and keeps the core's errors inside). Reading never creates an
account: a user who has none yet sees a zero balance and no transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

import financial
from printsrv import errors
from printsrv.accounts import service as accounting

__all__ = ["AccountOverview", "TransactionLine", "account_overview", "display_amount"]

LATEST = 10


@dataclass(frozen=True)
class TransactionLine:
    """One ledger row as the page lists it."""

    created_at: datetime
    kind: str
    amount: str
    balance_after: str
    comment: str


@dataclass(frozen=True)
class AccountOverview:
    """The balance (for people, and in the wire form) and the latest transactions."""

    balance: str
    balance_wire: str
    transactions: list[TransactionLine]


def display_amount(amount: Decimal) -> str:
    """An amount for people: two decimals unless more are needed ("9.26", "0.125")."""
    text = financial.to_wire(amount).rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def account_overview(session: Session, user_name: str, *, limit: int = LATEST) -> AccountOverview:
    """Balance and latest `limit` transactions (newest first) of the user's USER account."""
    balance = accounting.user_balance(session, user_name)
    try:
        details = accounting.account_details(
            session, "USER", user_name, default_credit_limit=financial.ZERO, limit=limit
        )
        rows = details.latest
    except errors.NotFound:  # no account yet: nothing has been charged or paid
        rows = []
    lines = [
        TransactionLine(
            created_at=trx.created_at,
            kind=str(trx.trx_type),
            amount=display_amount(trx.amount),
            balance_after=display_amount(trx.balance_after),
            comment=trx.comment,
        )
        for trx in rows
    ]
    return AccountOverview(display_amount(balance), financial.to_wire(balance), lines)

"""What the user's page shows of their account: balance and latest transactions.

The one place the web app reads the accounting core (`financial`), so the page does not
depend on how accounts are found or created. Reading never creates an account: a user
who has none yet sees a zero balance and no transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

import financial

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
    """The balance (for display) and the latest transactions, newest first."""

    balance: str
    balance_wire: str
    transactions: list[TransactionLine]


def display_amount(amount: Decimal) -> str:
    """An amount for people: two decimals unless more are needed ("9.26", "0.125")."""
    text = financial.to_wire(amount).rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def account_overview(session: Session, user_name: str, *, limit: int = LATEST) -> AccountOverview:
    """Balance and latest `limit` transactions of the user's USER account."""
    try:
        account = financial.get_account(session, financial.AccountType.USER, user_name)
    except financial.AccountNotFound:
        return AccountOverview(
            display_amount(financial.ZERO), financial.to_wire(financial.ZERO), []
        )
    lines = [
        TransactionLine(
            created_at=trx.created_at,
            kind=str(trx.trx_type),
            amount=display_amount(trx.amount),
            balance_after=display_amount(trx.balance_after),
            comment=trx.comment,
        )
        for trx in financial.latest_transactions(session, account, limit)
    ]
    return AccountOverview(
        display_amount(account.balance), financial.to_wire(account.balance), lines
    )

"""Checks of the ledger's invariants, for tests and ``printsrv financial verify``.

:func:`verify` returns every problem it finds rather than stopping at the first (as
beancount's validators do):

- ``balance``: an account's balance differs from the sum of its ledger rows;
- ``last-row``: an account's balance differs from its latest row's ``balance_after``;
- ``transfer``: a TRANSFER row whose twin is missing, not a TRANSFER, does not point
  back, or does not carry the opposite amount;
- ``reversal``: a reversal that is not on the same account, of the same type, or does
  not carry the opposite amount of the row it reverses.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from financial.money import ZERO, to_wire
from financial.schema import Account, AccountTrx, TrxType

__all__ = ["Problem", "verify"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken invariant.

    Attributes:
        code: ``balance``, ``last-row``, ``transfer`` or ``reversal``.
        message: a readable sentence naming the account or row and the values.
        account_id: the account concerned, if any.
        trx_id: the ledger row concerned, if any.
    """

    code: str
    message: str
    account_id: int | None = None
    trx_id: int | None = None

    def __str__(self) -> str:
        return self.message


def verify(session: Session) -> list[Problem]:
    """Return every broken ledger invariant in the database (an empty list if none)."""
    return [
        *_balances(session),
        *_last_rows(session),
        *_transfers(session),
        *_reversals(session),
    ]


def _label(account_type: str, name: str) -> str:
    return f"{account_type}/{name}"


def _balances(session: Session) -> list[Problem]:
    ledger_sum = (
        select(AccountTrx.account_id, func.sum(AccountTrx.amount).label("total"))
        .group_by(AccountTrx.account_id)
        .subquery()
    )
    total = func.coalesce(ledger_sum.c.total, ZERO)
    rows = session.execute(
        select(Account.id, Account.account_type, Account.name, Account.balance, ledger_sum.c.total)
        .outerjoin(ledger_sum, ledger_sum.c.account_id == Account.id)
        .where(Account.balance != total)
        .order_by(Account.id)
    )
    problems = []
    for account_id, account_type, name, balance, summed in rows:
        summed = summed if summed is not None else ZERO
        problems.append(
            Problem(
                "balance",
                f"account {_label(account_type, name)}: balance {to_wire(balance)} "
                f"!= ledger sum {to_wire(summed)}",
                account_id=account_id,
            )
        )
    return problems


def _last_rows(session: Session) -> list[Problem]:
    latest = (
        select(AccountTrx.account_id, func.max(AccountTrx.id).label("last_id"))
        .group_by(AccountTrx.account_id)
        .subquery()
    )
    rows = session.execute(
        select(Account.id, Account.account_type, Account.name, Account.balance, AccountTrx)
        .join(latest, latest.c.account_id == Account.id)
        .join(AccountTrx, AccountTrx.id == latest.c.last_id)
        .where(AccountTrx.balance_after != Account.balance)
        .order_by(Account.id)
    )
    return [
        Problem(
            "last-row",
            f"account {_label(account_type, name)}: balance {to_wire(balance)} != "
            f"balance after its latest transaction {trx.id} ({to_wire(trx.balance_after)})",
            account_id=account_id,
            trx_id=trx.id,
        )
        for account_id, account_type, name, balance, trx in rows
    ]


def _transfers(session: Session) -> list[Problem]:
    twin = aliased(AccountTrx)
    rows = session.execute(
        select(AccountTrx, twin)
        .outerjoin(twin, twin.id == AccountTrx.twin_id)
        .where(AccountTrx.trx_type == TrxType.TRANSFER.value)
        .where(
            or_(
                twin.id.is_(None),
                twin.trx_type != TrxType.TRANSFER.value,
                twin.twin_id.is_(None),
                twin.twin_id != AccountTrx.id,
                twin.amount != -AccountTrx.amount,
            )
        )
        .order_by(AccountTrx.id)
    )
    problems = []
    for trx, other in rows:
        if other is None:
            detail = "has no twin" if trx.twin_id is None else f"twin {trx.twin_id} is missing"
        elif other.twin_id != trx.id:
            detail = f"twin {other.id} points at {other.twin_id}, not back at it"
        elif other.trx_type != TrxType.TRANSFER:
            detail = f"twin {other.id} is a {other.trx_type}, not a TRANSFER"
        else:
            detail = (
                f"amount {to_wire(trx.amount)} is not the opposite of twin {other.id}'s "
                f"{to_wire(other.amount)}"
            )
        problems.append(
            Problem(
                "transfer",
                f"transfer {trx.id} (account {trx.account_id}): {detail}",
                account_id=trx.account_id,
                trx_id=trx.id,
            )
        )
    return problems


def _reversals(session: Session) -> list[Problem]:
    original = aliased(AccountTrx)
    rows = session.execute(
        select(AccountTrx, original)
        .join(original, original.id == AccountTrx.reversal_of_id)
        .where(
            or_(
                AccountTrx.amount != -original.amount,
                AccountTrx.account_id != original.account_id,
                AccountTrx.trx_type != original.trx_type,
            )
        )
        .order_by(AccountTrx.id)
    )
    problems = []
    for trx, reversed_trx in rows:
        problems.append(
            Problem(
                "reversal",
                f"reversal {trx.id} ({trx.trx_type} {to_wire(trx.amount)} on account "
                f"{trx.account_id}) does not negate transaction {reversed_trx.id} "
                f"({reversed_trx.trx_type} {to_wire(reversed_trx.amount)} on account "
                f"{reversed_trx.account_id})",
                account_id=trx.account_id,
                trx_id=trx.id,
            )
        )
    return problems

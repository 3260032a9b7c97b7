"""Charging a print and refunding it: the one door from printing into the ledger.

A print is charged to the user's USER account as one ``PRINT_OUT`` row linked to the
document, in the same transaction that creates the print job; a refund is the ledger's
reversal of that row, written in the transaction that marks the job failed, canceled or
aborted. ``financial.ledger.reverse`` reverses a row at most once (a unique column holds it
too), so a refund can never be paid twice.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from financial import ledger
from financial.accounts import Actor
from financial.errors import AccountDisabled, InsufficientCredit, ReversalRefused
from financial.ledger import LedgerEntry
from financial.money import to_wire
from financial.schema import AccountTrx
from printsrv.accounts import service as accounting
from printsrv.errors import NotAllowed
from printsrv.people import group_defaults

__all__ = ["AccountBlocked", "CreditExceeded", "charge_print", "refund_print"]

SYSTEM_ACTOR = Actor("system", "printing")


class CreditExceeded(NotAllowed):
    """The user's balance (with its credit limit) does not cover a print; answered 402.

    ``cost`` is the price of the print, ``available`` what the account could still pay.
    """

    def __init__(self, *, cost: Decimal, available: Decimal) -> None:
        super().__init__(
            f"Insufficient balance: the print costs {to_wire(cost)} and the account can pay "
            f"at most {to_wire(available)}"
        )
        self.cost = cost
        self.available = available


class AccountBlocked(NotAllowed):
    """The user's account is disabled, so it cannot be charged (403)."""


def charge_print(
    session: Session,
    *,
    user_name: str,
    amount: Decimal,
    document_id: int,
    comment: str,
    default_credit_limit: Decimal,
) -> LedgerEntry:
    """Charge ``amount`` (positive) to the user's USER account, linked to ``document_id``.

    This is printing's only call into the ledger's charging (``printsrv.accounts.service`` has no
    charge of its own yet); the credit limit comes from ``accounting.settings_of``. Raises
    ``CreditExceeded`` or ``AccountBlocked``.
    """
    # Through group_defaults: a user whose first money movement is a print gets the
    # initial credit and credit limit of their groups, as with any other first account.
    account = group_defaults.open_user_account(session, user_name)
    try:
        return ledger.charge(
            session,
            account=account,
            amount=amount,
            comment=comment,
            actor=accounting.user_actor(user_name),
            default_credit_limit=default_credit_limit,
            document_id=document_id,
        )
    except InsufficientCredit as exc:
        raise CreditExceeded(cost=exc.amount, available=exc.balance + exc.limit) from exc
    except AccountDisabled as exc:
        raise AccountBlocked(f"The account of user '{user_name}' is disabled") from exc


def refund_print(session: Session, *, charge_trx_id: int, reason: str) -> LedgerEntry:
    """Reverse a print's charge and return the reversal row.

    Idempotent: when the charge was already reversed, the existing reversal is returned.
    """
    charge = session.get(AccountTrx, charge_trx_id)
    if charge is None:  # pragma: no cover - the job row only ever names an existing charge
        raise LookupError(f"Charge {charge_trx_id} does not exist")
    try:
        return ledger.reverse(
            session, trx=charge, comment=f"Refund: {reason}"[:500], actor=SYSTEM_ACTOR
        )
    except ReversalRefused as exc:
        if exc.rule == "already-reversed" and exc.existing_id is not None:
            existing = session.get(AccountTrx, exc.existing_id)
            if existing is not None:
                return LedgerEntry.of(existing)
        raise

"""The ledger: the only code that changes a balance.

Every public function here ends in :func:`_post`, which inserts one append-only
``account_trx`` row and moves the account's balance by the same amount, in the caller's
database transaction. The functions never commit; the caller opens the transaction once
and commits (or rolls back) everything together, so a failure leaves neither a row
without its balance change nor half a transfer.

Concurrency: the involved account rows are locked with ``SELECT ... FOR UPDATE`` in
ascending id order before anything is read or written, so two transfers A->B and B->A
running at once wait for each other instead of deadlocking on PostgreSQL. SQLite has no
row locks: there the caller starts write transactions with ``BEGIN IMMEDIATE``, which
serialises writers.

Sign convention: a row's ``amount`` is what it adds to the balance. A charge of 2.50 is a
row of -2.500000; a refund of it is a row of +2.500000 pointing at the charge.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from financial.accounts import Actor
from financial.errors import (
    AccountDisabled,
    InsufficientCredit,
    InvalidAmount,
    LedgerMisuse,
    ReversalRefused,
    TransferRefused,
)
from financial.money import ZERO, money, to_wire
from financial.schema import Account, AccountTrx, CreditLimitPolicy, TrxType, utcnow

__all__ = [
    "TransferPolicy",
    "adjust_balance",
    "charge",
    "credit_limit_of",
    "reverse",
    "set_balance",
    "transfer",
]

Amount = Decimal | str | int


@dataclass(frozen=True, slots=True)
class TransferPolicy:
    """The rules for user-to-user transfers, from the application's configuration.

    Attributes:
        enabled: whether users may transfer credit at all.
        minimum: the smallest amount allowed, or ``None`` for no minimum.
        maximum: the largest amount allowed, or ``None`` for no maximum.
    """

    enabled: bool
    minimum: Decimal | None = None
    maximum: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("minimum", "maximum"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, money(value))
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise InvalidAmount(
                f"Transfer minimum '{to_wire(self.minimum)}' is above the maximum "
                f"'{to_wire(self.maximum)}'"
            )


def adjust_balance(
    session: Session,
    *,
    account: Account,
    amount: Amount,
    comment: str,
    actor: Actor,
    trx_type: str = TrxType.ADJUST,
    reference: str | None = None,
) -> AccountTrx:
    """Add ``amount`` (may be negative) to the balance and return the new ledger row.

    For admin corrections, deposits, vouchers and payments (``trx_type`` DEPOSIT,
    GATEWAY, VOUCHER ...; not TRANSFER, which raises ``ValueError``). No credit limit
    applies, and disabled accounts may be adjusted. Raises :class:`InvalidAmount` for a
    zero or malformed amount.
    """
    value = _nonzero(amount)
    kind = _trx_type(trx_type)
    (locked,) = _lock(session, account)
    return _post(
        session,
        locked,
        amount=value,
        trx_type=kind,
        comment=comment,
        actor=actor,
        reference=reference,
    )


def set_balance(
    session: Session,
    *,
    account: Account,
    amount: Amount,
    comment: str,
    actor: Actor,
    reference: str | None = None,
) -> Decimal:
    """Set the balance to ``amount`` with an ADJUST row for the difference; return it.

    When the balance already equals ``amount`` nothing is written.
    """
    target = money(amount)
    (locked,) = _lock(session, account)
    difference = target - locked.balance
    if difference == 0:
        return locked.balance
    row = _post(
        session,
        locked,
        amount=difference,
        trx_type=TrxType.ADJUST,
        comment=comment,
        actor=actor,
        reference=reference,
    )
    return row.balance_after


def credit_limit_of(account: Account, *, default_credit_limit: Decimal) -> Decimal:
    """Return how far below zero ``account`` may be charged (zero or positive)."""
    if account.credit_limit_policy == CreditLimitPolicy.INDIVIDUAL:
        return account.credit_limit if account.credit_limit is not None else ZERO
    if account.credit_limit_policy == CreditLimitPolicy.DEFAULT:
        limit = money(default_credit_limit)
        if limit < 0:
            raise InvalidAmount(f"Default credit limit '{default_credit_limit}' is negative")
        return limit
    return ZERO


def charge(
    session: Session,
    *,
    account: Account,
    amount: Amount,
    comment: str,
    actor: Actor,
    default_credit_limit: Decimal,
    trx_type: str = TrxType.PRINT_OUT,
    document_id: int | None = None,
    reference: str | None = None,
) -> AccountTrx:
    """Charge ``amount`` (positive) to the account and return the ledger row.

    The row's amount is ``-amount``. Refused with :class:`InsufficientCredit` when the
    balance would fall below minus the credit limit: policy NONE allows no credit,
    DEFAULT allows ``default_credit_limit`` (the application's setting), INDIVIDUAL the
    account's own limit. Raises :class:`AccountDisabled` for a disabled account and
    :class:`InvalidAmount` unless ``amount`` is positive.
    """
    value = money(amount)
    if value <= 0:
        raise InvalidAmount(f"Charge '{amount}' must be positive")
    kind = _trx_type(trx_type)
    (locked,) = _lock(session, account)
    if locked.disabled:
        raise AccountDisabled(locked.account_type, locked.name)
    limit = credit_limit_of(locked, default_credit_limit=default_credit_limit)
    if locked.balance - value < -limit:
        raise InsufficientCredit(balance=locked.balance, amount=value, limit=limit)
    return _post(
        session,
        locked,
        amount=-value,
        trx_type=kind,
        comment=comment,
        actor=actor,
        document_id=document_id,
        reference=reference,
    )


def reverse(session: Session, *, trx: AccountTrx, comment: str, actor: Actor) -> AccountTrx:
    """Write and return the row that undoes ``trx`` (a refund of a charge, say).

    The reversal has the same type, the opposite amount, the same document and reference,
    and ``reversal_of_id`` pointing at ``trx``. A row is reversed at most once (the
    database enforces it too); reversals and transfer legs are not reversed. Raises
    :class:`ReversalRefused` with ``rule`` ``already-reversed`` (and ``existing_id``),
    ``is-reversal`` or ``transfer``. No credit limit applies.
    """
    if trx.reversal_of_id is not None:
        raise ReversalRefused(
            "is-reversal", f"Transaction {trx.id} is itself a reversal of {trx.reversal_of_id}"
        )
    if trx.trx_type == TrxType.TRANSFER:
        raise ReversalRefused(
            "transfer", f"Transaction {trx.id} is a transfer: transfer the amount back instead"
        )
    (locked,) = _lock(session, _account_of(session, trx))
    existing = session.scalars(
        select(AccountTrx.id).where(AccountTrx.reversal_of_id == trx.id)
    ).first()
    if existing is not None:
        raise ReversalRefused(
            "already-reversed",
            f"Transaction {trx.id} was already reversed by transaction {existing}",
            existing_id=existing,
        )
    return _post(
        session,
        locked,
        amount=-trx.amount,
        trx_type=TrxType(trx.trx_type),
        comment=comment,
        actor=actor,
        document_id=trx.document_id,
        reference=trx.reference,
        reversal_of_id=trx.id,
    )


def transfer(
    session: Session,
    *,
    sender: Account,
    recipient: Account,
    amount: Amount,
    comment: str,
    actor: Actor,
    policy: TransferPolicy,
) -> tuple[AccountTrx, AccountTrx]:
    """Move ``amount`` from ``sender`` to ``recipient``; return (debit row, credit row).

    The two TRANSFER rows point at each other through ``twin_id``. Rules, checked in
    this order, each refused with :class:`TransferRefused` naming it: ``transfers-disabled``,
    ``amount-not-positive``, ``minimum``, ``maximum``, ``self``, ``sender-disabled``,
    ``recipient-disabled``, ``sender-below-zero`` (the credit limit does not apply to
    transfers). A malformed amount raises :class:`InvalidAmount`.
    """
    if not policy.enabled:
        raise TransferRefused("transfers-disabled", "Transfers between users are disabled")
    value = money(amount)
    if value <= 0:
        raise TransferRefused(
            "amount-not-positive", f"Transfer amount '{to_wire(value)}' must be positive"
        )
    if policy.minimum is not None and value < policy.minimum:
        raise TransferRefused(
            "minimum",
            f"Transfer amount '{to_wire(value)}' is below the minimum '{to_wire(policy.minimum)}'",
        )
    if policy.maximum is not None and value > policy.maximum:
        raise TransferRefused(
            "maximum",
            f"Transfer amount '{to_wire(value)}' is above the maximum '{to_wire(policy.maximum)}'",
        )
    if sender.id == recipient.id:
        raise TransferRefused("self", f"Account '{sender.label}' cannot transfer to itself")
    source, target = _lock(session, sender, recipient)
    if source.disabled:
        raise TransferRefused("sender-disabled", f"Sender account '{source.label}' is disabled")
    if target.disabled:
        raise TransferRefused(
            "recipient-disabled", f"Recipient account '{target.label}' is disabled"
        )
    if source.balance - value < 0:
        raise TransferRefused(
            "sender-below-zero",
            f"Transfer of '{to_wire(value)}' would take '{source.label}' below zero "
            f"(balance '{to_wire(source.balance)}')",
        )
    debit = _post(
        session,
        source,
        amount=-value,
        trx_type=TrxType.TRANSFER,
        comment=comment,
        actor=actor,
    )
    credit = _post(
        session,
        target,
        amount=value,
        trx_type=TrxType.TRANSFER,
        comment=comment,
        actor=actor,
        twin_id=debit.id,
    )
    debit.twin_id = credit.id
    session.flush()
    return debit, credit


def _post(
    session: Session,
    account: Account,
    *,
    amount: Decimal,
    trx_type: TrxType,
    comment: str,
    actor: Actor,
    document_id: int | None = None,
    reference: str | None = None,
    twin_id: int | None = None,
    reversal_of_id: int | None = None,
) -> AccountTrx:
    """The one write path: insert a ledger row and move the balance by ``amount``.

    ``account`` must already be locked by :func:`_lock` in this transaction. The balance
    moves with ``SET balance = balance + amount`` and the row records what came back.
    """
    if not isinstance(actor, Actor):
        raise TypeError(f"actor must be an Actor, not {type(actor).__name__}")
    new_balance = account.balance + amount
    if abs(new_balance) >= Decimal(10) ** 12:
        raise InvalidAmount(
            f"Amount '{to_wire(amount)}' would take '{account.label}' to a balance with more "
            "than 12 integer digits"
        )
    stored = session.execute(
        update(Account)
        .where(Account.id == account.id)
        .values(balance=Account.balance + amount)
        .returning(Account.balance)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    set_committed_value(account, "balance", stored)
    row = AccountTrx(
        account_id=account.id,
        trx_type=trx_type.value,
        amount=amount,
        balance_after=stored,
        comment=comment or "",
        actor_kind=actor.kind,
        actor_name=actor.name,
        created_at=utcnow(),
        document_id=document_id,
        reference=reference,
        twin_id=twin_id,
        reversal_of_id=reversal_of_id,
    )
    session.add(row)
    session.flush()
    return row


def _lock(session: Session, *accounts: Account) -> list[Account]:
    """Lock the accounts' rows in ascending id order; return fresh copies in given order."""
    _require_transaction(session)
    session.flush()
    locked: dict[int, Account] = {}
    for account_id in sorted({account.id for account in accounts}):
        locked[account_id] = session.scalars(
            select(Account)
            .where(Account.id == account_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
    return [locked[account.id] for account in accounts]


def _require_transaction(session: Session) -> None:
    try:
        connection = session.connection()
    except InvalidRequestError as exc:
        raise LedgerMisuse(
            "The ledger is written inside a transaction: call session.begin() (or use the "
            "application's db.transaction()) before changing a balance"
        ) from exc
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        raise LedgerMisuse(
            "The ledger cannot be written on an AUTOCOMMIT connection: the row and the "
            "balance must change in one transaction"
        )


def _account_of(session: Session, trx: AccountTrx) -> Account:
    account = session.get(Account, trx.account_id)
    if account is None:  # pragma: no cover - the foreign key forbids it
        raise LookupError(f"Transaction {trx.id} has no account {trx.account_id}")
    return account


def _nonzero(amount: Amount) -> Decimal:
    value = money(amount)
    if value == 0:
        raise InvalidAmount(f"Amount '{amount}' is zero: nothing to adjust")
    return value


def _trx_type(value: str) -> TrxType:
    try:
        kind = TrxType(value)
    except ValueError:
        raise ValueError(f"Transaction type '{value}' is unknown") from None
    if kind is TrxType.TRANSFER:
        raise ValueError("TRANSFER rows are written by transfer() only")
    return kind

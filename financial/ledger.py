"""The ledger: the only code that changes a balance.

Every public function that writes ends in :func:`_post`, which inserts the append-only
``account_trx`` rows (one, or the two legs of a transfer) and moves each account's balance
by its row's amount, in the caller's database transaction; :func:`post_set` does the same
for a set of accounts at once (below). The functions never commit;
the caller opens the transaction once and commits (or rolls back) everything together, so
a failure leaves neither a row without its balance change nor half a transfer.

Concurrency: the involved account rows are locked with one ``SELECT ... WHERE id IN (...)
ORDER BY id FOR UPDATE`` before anything is read or written, so two transfers A->B and
B->A running at once wait for each other instead of deadlocking on PostgreSQL. SQLite has
no row locks: there the caller starts write transactions with ``BEGIN IMMEDIATE``, which
serialises writers.

Values: locks read the accounts' rows as :class:`LockedAccount` snapshots and every write
returns :class:`LedgerEntry` values, both plain frozen objects made from Core rows. A
posted row is a fact that never changes, and building ORM objects was most of what a
transfer cost the server (bench/financial). ORM ``Account`` objects the session has
loaded get the new balance after each write.

Round trips: a transfer is one locking query and one write. On PostgreSQL the write is a
single statement: the balances move in an ``UPDATE ... RETURNING`` (a data-modifying
``WITH``), and both legs are inserted from it with ids taken from the sequence in the same
statement, so each leg is written already pointing at its twin and no row is ever
updated. SQLite runs the ``UPDATE ... RETURNING`` and one ``INSERT`` (after reading the
last id, for a transfer) as separate statements: its round trips are function calls. On
psycopg the lock and the write go straight to the driver's cursor, rendered once per
process (``financial._driver``): SQLAlchemy's per-call machinery cost more than the driver.

Many accounts at once: :func:`post_set` writes one row on each account of a set the
database selects (a group's quota for thousands of members), in a fixed number of
statements instead of one write per account. It is the ledger's only other write path and
keeps the same rules: rows and balances move together, accounts are locked in ascending
id order first, and every row records the balance it left.

Sign convention: a row's ``amount`` is what it adds to the balance. A charge of 2.50 is a
row of -2.500000; a refund of it is a row of +2.500000 pointing at the charge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    bindparam,
    case,
    event,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.attributes import set_committed_value

from financial._driver import fetch_all
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
from financial.schema import (
    Account,
    AccountTrx,
    CreditLimitPolicy,
    MoneyType,
    TrxType,
    utcnow,
)

__all__ = [
    "LedgerEntry",
    "LockedAccount",
    "TransferPolicy",
    "adjust_balance",
    "charge",
    "credit_limit_of",
    "lock_account_set",
    "post_set",
    "reverse",
    "set_balance",
    "transfer",
]

Amount = Decimal | str | int


@dataclass(slots=True)
class LockedAccount:
    """An account's row as this transaction read it under its lock: what the rules check.

    The ledger keeps ``balance`` current through the transaction's own writes (see
    :func:`_lock`); nothing else changes it.
    """

    id: int
    account_type: str
    name: str
    balance: Decimal
    credit_limit_policy: str
    credit_limit: Decimal | None
    disabled: bool

    @property
    def label(self) -> str:
        """``TYPE/name``, as messages show the account."""
        return f"{self.account_type}/{self.name}"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ledger row as it was written; the columns of :class:`AccountTrx`."""

    id: int
    account_id: int
    trx_type: str
    amount: Decimal
    balance_after: Decimal
    comment: str
    actor_kind: str
    actor_name: str
    created_at: datetime
    twin_id: int | None
    reversal_of_id: int | None
    document_id: int | None
    reference: str | None

    @classmethod
    def of(cls, row: AccountTrx) -> LedgerEntry:
        """The entry of a row loaded through the ORM."""
        return cls(*(getattr(row, name) for name in _ENTRY_FIELDS))


# An account as the public functions take it: loaded through the ORM, or locked already.
AnyAccount = Account | LockedAccount
# A ledger row as reverse() takes it.
AnyEntry = AccountTrx | LedgerEntry

_ACCOUNT = Account.__table__.c
_TRX = AccountTrx.__table__.c
_LOCKED_FIELDS = tuple(field.name for field in fields(LockedAccount))
_ENTRY_FIELDS = tuple(field.name for field in fields(LedgerEntry))
_LOCKED_COLUMNS = tuple(_ACCOUNT[name] for name in _LOCKED_FIELDS)
# What a write reads back: the rest of each row is what the ledger wrote.
_WRITTEN = (_TRX.id, _TRX.account_id, _TRX.balance_after, _TRX.twin_id)


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
    account: AnyAccount,
    amount: Amount,
    comment: str,
    actor: Actor,
    trx_type: str = TrxType.ADJUST,
    reference: str | None = None,
) -> LedgerEntry:
    """Add ``amount`` (may be negative) to the balance and return the new ledger row.

    For admin corrections, deposits, vouchers and payments (``trx_type`` DEPOSIT,
    GATEWAY, VOUCHER ...; not TRANSFER, which raises ``ValueError``). No credit limit
    applies, and disabled accounts may be adjusted. Raises :class:`InvalidAmount` for a
    zero or malformed amount.
    """
    value = _nonzero(amount)
    kind = _trx_type(trx_type)
    (locked,) = _lock(session, account)
    (row,) = _post(
        session,
        [_Leg(locked, value)],
        trx_type=kind,
        comment=comment,
        actor=actor,
        reference=reference,
    )
    return row


def set_balance(
    session: Session,
    *,
    account: AnyAccount,
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
    (row,) = _post(
        session,
        [_Leg(locked, difference)],
        trx_type=TrxType.ADJUST,
        comment=comment,
        actor=actor,
        reference=reference,
    )
    return row.balance_after


def credit_limit_of(account: AnyAccount, *, default_credit_limit: Decimal) -> Decimal:
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
    account: AnyAccount,
    amount: Amount,
    comment: str,
    actor: Actor,
    default_credit_limit: Decimal,
    trx_type: str = TrxType.PRINT_OUT,
    document_id: int | None = None,
    reference: str | None = None,
) -> LedgerEntry:
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
    (row,) = _post(
        session,
        [_Leg(locked, -value)],
        trx_type=kind,
        comment=comment,
        actor=actor,
        document_id=document_id,
        reference=reference,
    )
    return row


def reverse(session: Session, *, trx: AnyEntry, comment: str, actor: Actor) -> LedgerEntry:
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
    (locked,) = _lock(session, _AccountId(trx.account_id))
    existing = session.scalars(
        select(AccountTrx.id).where(AccountTrx.reversal_of_id == trx.id)
    ).first()
    if existing is not None:
        raise ReversalRefused(
            "already-reversed",
            f"Transaction {trx.id} was already reversed by transaction {existing}",
            existing_id=existing,
        )
    (row,) = _post(
        session,
        [_Leg(locked, -trx.amount)],
        trx_type=TrxType(trx.trx_type),
        comment=comment,
        actor=actor,
        document_id=trx.document_id,
        reference=trx.reference,
        reversal_of_id=trx.id,
    )
    return row


def transfer(
    session: Session,
    *,
    sender: AnyAccount,
    recipient: AnyAccount,
    amount: Amount,
    comment: str,
    actor: Actor,
    policy: TransferPolicy,
) -> tuple[LedgerEntry, LedgerEntry]:
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
    # Both legs in one write, each inserted already pointing at the other.
    debit, credit = _post(
        session,
        [_Leg(source, -value), _Leg(target, value)],
        trx_type=TrxType.TRANSFER,
        comment=comment,
        actor=actor,
    )
    return debit, credit


def lock_account_set(session: Session, account_ids: Select[Any]) -> int:
    """Lock every account whose id ``account_ids`` selects, in ascending id order; how many.

    The set-based twin of :func:`lock_accounts`: the ids stay in the database (one
    ``SELECT count(*) FROM (SELECT id ... ORDER BY id FOR UPDATE)``), so locking 100,000
    accounts costs one round trip and no Python object per account. Ascending order is the
    order every other lock of the ledger takes, so a set lock and a transfer wait for each
    other instead of deadlocking. SQLite renders no ``FOR UPDATE``: its writers are
    serialised by ``BEGIN IMMEDIATE``.
    """
    _require_transaction(session)
    session.flush()
    ids = (
        select(_ACCOUNT.id)
        .where(_ACCOUNT.id.in_(account_ids.scalar_subquery()))
        .order_by(_ACCOUNT.id)
        .with_for_update()
        .subquery("locked")
    )
    return int(session.connection().execute(select(func.count()).select_from(ids)).scalar_one())


def post_set(
    session: Session,
    *,
    amounts: Select[Any],
    trx_type: str,
    comment: str,
    actor: Actor,
    reference: str | None = None,
) -> int:
    """Write one ledger row per row of ``amounts`` and move each balance by it; how many.

    ``amounts`` is a query of two columns, ``account_id`` and ``amount`` (what the row
    adds to the balance), one row per account: the set of rows stays in the database, so
    crediting 100,000 accounts is a handful of statements, not 100,000 writes. Every row
    gets ``trx_type`` (not TRANSFER: a transfer has two legs), ``comment``, ``actor``,
    ``reference`` and one ``created_at``.

    This is :func:`_post` for a set, and the only other code that changes balances. The
    same rules hold: the accounts are locked first, in ascending id order
    (:func:`lock_account_set`); each row records the balance right after it; row and
    balance change in the caller's transaction. No credit limit applies and disabled
    accounts are credited (as in :func:`adjust_balance`). Raises :class:`InvalidAmount`,
    before anything is written, when an amount is zero or would take a balance past 12
    integer digits, and ``ValueError`` when an account appears twice.

    PostgreSQL writes with one statement: ``WITH moved AS (UPDATE account ... FROM amounts
    RETURNING ...), inserted AS (INSERT INTO account_trx ... SELECT ... FROM moved RETURNING id)
    SELECT count(*) FROM inserted``. SQLite cannot return
    the joined amount from an ``UPDATE ... FROM``, so it inserts the rows first (computing
    each ``balance_after`` from the locked balance) and then sets each balance to its new
    row's ``balance_after``; the rows are the ones above the highest id read before the
    insert, which is safe because SQLite's one writer holds the write lock throughout.
    """
    kind = _trx_type(trx_type)
    if not isinstance(actor, Actor):
        raise TypeError(f"actor must be an Actor, not {type(actor).__name__}")
    credits = amounts.subquery("credits")
    lock_account_set(session, select(credits.c.account_id))
    _check_set(session, credits)
    fields: dict[str, Any] = {
        "trx_type": kind.value,
        "comment": comment or "",
        "actor_kind": actor.kind,
        "actor_name": actor.name,
        "created_at": utcnow(),
        "reference": reference,
    }
    constants = {
        name: bindparam(f"row_{name}", value, type_=_TRX[name].type)
        for name, value in fields.items()
    }
    trx = AccountTrx.__table__
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        moved = (
            update(Account.__table__)
            .where(_ACCOUNT.id == credits.c.account_id)
            .values(balance=_ACCOUNT.balance + credits.c.amount)
            .returning(_ACCOUNT.id, credits.c.amount, _ACCOUNT.balance)
            .cte("moved")
        )
        rows = select(moved.c.id, moved.c.amount, moved.c.balance, *constants.values()).order_by(
            moved.c.id
        )
        inserted = (
            insert(trx)
            .from_select(["account_id", "amount", "balance_after", *constants], rows)
            .returning(_TRX.id)
            .cte("inserted")
        )
        # Counted in the database: the rows themselves never travel.
        written = connection.execute(
            select(func.count()).select_from(inserted).add_cte(moved)
        ).scalar_one()
    else:
        last = connection.execute(select(func.coalesce(func.max(_TRX.id), 0))).scalar_one()
        rows = (
            select(
                credits.c.account_id,
                credits.c.amount,
                _ACCOUNT.balance + credits.c.amount,
                *constants.values(),
            )
            .join(Account.__table__, _ACCOUNT.id == credits.c.account_id)
            .order_by(credits.c.account_id)
        )
        written = connection.execute(
            insert(trx).from_select(["account_id", "amount", "balance_after", *constants], rows)
        ).rowcount
        connection.execute(
            update(Account.__table__)
            .where(_ACCOUNT.id == _TRX.account_id, _TRX.id > last)
            .values(balance=_TRX.balance_after)
        )
    _forget_balances(session)
    return int(written)


# The largest balance a row may leave: 12 integer digits (as _post checks).
_BALANCE_LIMIT = Decimal("999999999999.999999")


def _check_set(session: Session, credits: Any) -> None:
    """Refuse a set with a zero amount, an account twice or a balance past 12 digits."""
    limit = bindparam("limit", _BALANCE_LIMIT, type_=MoneyType())
    bad = (credits.c.amount == 0) | (func.abs(_ACCOUNT.balance + credits.c.amount) > limit)
    rows, accounts, refused = (
        session.connection()
        .execute(
            select(
                func.count(),
                func.count(credits.c.account_id.distinct()),
                func.coalesce(func.sum(case((bad, 1), else_=0)), 0),
            ).select_from(credits.join(Account.__table__, _ACCOUNT.id == credits.c.account_id))
        )
        .one()
    )
    if rows != accounts:
        raise ValueError("a set write has one row per account: an account appears twice")
    if refused:
        raise InvalidAmount(
            f"{refused} of {rows} amounts are zero or would take a balance to more than 12 "
            "integer digits: nothing was written"
        )


def _forget_balances(session: Session) -> None:
    """After a set write: the locked snapshots and loaded accounts' balances are stale."""
    session.info.pop(_LOCKED, None)
    for key, loaded in list(session.identity_map.items()):
        if key[0] is Account:
            session.expire(loaded, ["balance"])


# The columns of a ledger row that are the same for every leg of one write.
_FIELDS = (
    "trx_type",
    "comment",
    "actor_kind",
    "actor_name",
    "created_at",
    "document_id",
    "reference",
    "reversal_of_id",
)


@dataclass(frozen=True, slots=True)
class _Leg:
    """One row of a ledger write: a locked account and what the row adds to its balance."""

    account: LockedAccount
    amount: Decimal


def _post(
    session: Session,
    legs: Sequence[_Leg],
    *,
    trx_type: TrxType,
    comment: str,
    actor: Actor,
    document_id: int | None = None,
    reference: str | None = None,
    reversal_of_id: int | None = None,
) -> list[LedgerEntry]:
    """The one write path: insert one ledger row per leg and move each balance by its amount.

    One leg is an ordinary row; two legs are a transfer, whose rows are written pointing
    at each other (``twin_id``). The accounts must already be locked by :func:`_lock` in
    this transaction. Balances move with ``SET balance = balance + amount`` and each row
    records the balance that came back. Returns the rows in the order of ``legs``.
    """
    if not isinstance(actor, Actor):
        raise TypeError(f"actor must be an Actor, not {type(actor).__name__}")
    if len(legs) not in (1, 2) or len({leg.account.id for leg in legs}) != len(legs):
        raise ValueError("a ledger write has one leg, or two legs on different accounts")
    for leg in legs:
        if abs(leg.account.balance + leg.amount) >= Decimal(10) ** 12:
            raise InvalidAmount(
                f"Amount '{to_wire(leg.amount)}' would take '{leg.account.label}' to a balance "
                "with more than 12 integer digits"
            )
    fields: dict[str, Any] = {  # one entry per name in _FIELDS
        "trx_type": trx_type.value,
        "comment": comment or "",
        "actor_kind": actor.kind,
        "actor_name": actor.name,
        "created_at": utcnow(),
        "document_id": document_id,
        "reference": reference,
        "reversal_of_id": reversal_of_id,
    }
    if session.get_bind().dialect.name == "postgresql":
        written = _write_postgresql(session, legs, fields)
    else:
        written = _write_sqlite(session, legs, fields)
    # The database gives back only what it decided (ids, balances); the rest is ours.
    by_account = {account_id: (trx_id, after, twin) for trx_id, account_id, after, twin in written}
    entries = []
    for leg in legs:
        trx_id, balance_after, twin_id = by_account[leg.account.id]
        entries.append(
            LedgerEntry(
                id=trx_id,
                account_id=leg.account.id,
                amount=leg.amount,
                balance_after=balance_after,
                twin_id=twin_id,
                **fields,
            )
        )
    _moved(session, {entry.account_id: entry.balance_after for entry in entries})
    return entries


def _leg_param(name: str, leg: int) -> BindParameter[Any]:
    """The bound parameter ``name_<leg>`` of a prepared write (account id or amount)."""
    return bindparam(f"{name}_{leg}", type_=MoneyType() if name == "amount" else Integer())


def _by_leg(column: Any, values: Sequence[Any]) -> Any:
    """``CASE WHEN column = :account_0 THEN values[0] WHEN column = :account_1 THEN ...``."""
    return case(*((column == _leg_param("account", i), v) for i, v in enumerate(values)))


@cache
def _postgresql_write(legs: int) -> Any:
    """The statement that writes ``legs`` legs on PostgreSQL, built once per process.

    ``WITH moved AS (UPDATE account ... RETURNING id, balance)``; for a transfer also
    ``ids AS (SELECT nextval(seq), nextval(seq))`` (a CTE calling a volatile function is
    evaluated once); then ``INSERT INTO account_trx ... SELECT ... FROM moved [JOIN ids]
    RETURNING *``. PostgreSQL checks the twins' foreign keys at the end of the statement,
    when both rows exist. Every value is a bound parameter (``account_<i>``, ``amount_<i>``
    and the row's fields as ``row_<name>``), so building it costs nothing per call.
    """
    account, trx = Account.__table__.c, AccountTrx.__table__
    amounts = [_leg_param("amount", i) for i in range(legs)]
    moved = (
        update(Account.__table__)
        .where(account.id.in_([_leg_param("account", i) for i in range(legs)]))
        .values(balance=account.balance + _by_leg(account.id, amounts))
        .returning(account.id, account.balance)
        .cte("moved")
    )
    columns: dict[str, Any] = {
        "account_id": moved.c.id,
        "amount": _by_leg(moved.c.id, amounts),
        "balance_after": moved.c.balance,
    }
    source: Any = moved
    if legs == 2:
        sequence = func.pg_get_serial_sequence(AccountTrx.__tablename__, "id")
        ids = select(
            func.nextval(sequence).label("first"), func.nextval(sequence).label("second")
        ).cte("ids")
        columns["id"] = _by_leg(moved.c.id, [ids.c.first, ids.c.second])
        columns["twin_id"] = _by_leg(moved.c.id, [ids.c.second, ids.c.first])
        source = moved.join(ids, true())
    for name in _FIELDS:
        columns[name] = bindparam(f"row_{name}", type_=trx.c[name].type)
    rows = select(*columns.values()).select_from(source)
    return insert(trx).from_select(list(columns), rows).add_cte(moved).returning(*_WRITTEN)


def _write_postgresql(session: Session, legs: Sequence[_Leg], fields: dict[str, Any]) -> Any:
    """Move the balances and insert the rows in one statement (one round trip).

    The statement is built once and run on the driver's cursor (``financial._driver``:
    SQLAlchemy's execution machinery cost more than psycopg's own work).
    """
    # The parameters' names are no column's name: an UPDATE or INSERT would take a
    # parameter named like one of its columns as a value to set.
    params = {f"row_{name}": value for name, value in fields.items()} | _leg_params(legs)
    return fetch_all(session.connection(), _postgresql_write(len(legs)), params)


def _leg_params(legs: Sequence[_Leg]) -> dict[str, Any]:
    """The values of the ``account_<i>`` and ``amount_<i>`` parameters."""
    params: dict[str, Any] = {}
    for i, leg in enumerate(legs):
        params[f"account_{i}"] = leg.account.id
        params[f"amount_{i}"] = leg.amount
    return params


@cache
def _sqlite_update(legs: int) -> Any:
    """``UPDATE account SET balance = balance + CASE ... RETURNING id, balance``, built once."""
    return (
        update(Account)
        .where(Account.id.in_([_leg_param("account", i) for i in range(legs)]))
        .values(
            balance=Account.balance
            + _by_leg(Account.id, [_leg_param("amount", i) for i in range(legs)])
        )
        .returning(Account.id, Account.balance)
        .execution_options(synchronize_session=False)
    )


def _write_sqlite(session: Session, legs: Sequence[_Leg], fields: dict[str, Any]) -> Any:
    """Move the balances with one ``UPDATE ... RETURNING``, then insert the rows at once.

    SQLite has no data-modifying ``WITH``, hence two statements. A transfer's ids are
    taken as ``max(id) + 1`` and ``+ 2``: safe, because the ``UPDATE`` holds SQLite's one
    write lock until the transaction ends, so no other writer can insert meanwhile; and
    what SQLite would pick itself (no AUTOINCREMENT). The twins' foreign keys are checked
    at the end of the ``INSERT``, when both rows exist.
    """
    stored = dict(session.execute(_sqlite_update(len(legs)), _leg_params(legs)).all())
    values = [
        {
            **fields,
            "account_id": leg.account.id,
            "amount": leg.amount,
            "balance_after": stored[leg.account.id],
        }
        for leg in legs
    ]
    if len(legs) == 2:
        last = session.scalar(select(func.coalesce(func.max(AccountTrx.id), 0))) or 0
        values[0] |= {"id": last + 1, "twin_id": last + 2}
        values[1] |= {"id": last + 2, "twin_id": last + 1}
    # A multi-row VALUES: one statement (an executemany would insert the rows one by one,
    # and the first would fail its twin's foreign key).
    return session.execute(insert(AccountTrx.__table__).values(values).returning(*_WRITTEN)).all()


# Session.info: the innermost transaction that locked accounts, and its snapshots by id.
_LOCKED = "financial.locked_accounts"


def lock_accounts(
    session: Session, where: ColumnElement[bool], params: dict[str, Any]
) -> list[LockedAccount]:
    """Lock the accounts that match ``where``; return their rows in ascending id order.

    For callers that find accounts by something other than their id (a user name):
    ``where`` is a condition on the ``account`` table (a module constant, so the query is
    built once) with ``params`` its bound values. The rows are locked in ascending id
    order, like every other lock the ledger takes. The ledger functions given these
    accounts later in the same transaction do not lock them again (one round trip less
    per transfer).
    """
    _require_transaction(session)
    session.flush()
    rows = fetch_all(session.connection(), _locking(where), params)  # no ORM layer to pay
    locked = [LockedAccount(*row) for row in rows]
    _remember_locked(session, locked)
    return locked


@cache
def _locking(where: ColumnElement[bool]) -> Select[Any]:
    return select(*_LOCKED_COLUMNS).where(where).order_by(_ACCOUNT.id).with_for_update()


@cache
def _locking_ids(count: int) -> Select[Any]:
    # One bound parameter per id (an expanding IN is rendered again on every call).
    return _locking(_ACCOUNT.id.in_([bindparam(f"id_{i}", type_=Integer()) for i in range(count)]))


def _innermost(session: Session) -> Any:
    return session.get_nested_transaction() or session.get_transaction()


def _held(session: Session) -> dict[int, LockedAccount] | None:
    # Only within the transaction (or savepoint) that took the locks: a commit or a
    # rollback releases them, and with them this knowledge.
    held = session.info.get(_LOCKED)
    return held[1] if held is not None and held[0] is _innermost(session) else None


def _remember_locked(session: Session, accounts: Sequence[LockedAccount]) -> None:
    held = _held(session)
    if held is None:
        held = {}
        session.info[_LOCKED] = (_innermost(session), held)
    held.update((account.id, account) for account in accounts)


def _lock(session: Session, *accounts: AnyAccount | _AccountId) -> list[LockedAccount]:
    """Lock the accounts' rows in ascending id order; return their snapshots in given order.

    One query: PostgreSQL locks the rows as the sorted result is produced, so every
    writer takes them in the same order (no deadlock). SQLite renders no ``FOR UPDATE``;
    its writers are serialised by ``BEGIN IMMEDIATE``. Accounts this transaction locked
    already (:func:`lock_accounts`, an earlier call) are not queried again: their
    snapshots are current, since every write of this transaction updates them.
    """
    _require_transaction(session)
    # Pending ORM changes to these accounts reach the database first; one that updates an
    # account also drops the snapshots (_account_changed).
    session.flush()
    ids = sorted({account.id for account in accounts})
    held = _held(session)
    if held is None or any(i not in held for i in ids):
        params = {f"id_{i}": value for i, value in enumerate(ids)}
        rows = fetch_all(session.connection(), _locking_ids(len(ids)), params)
        fresh = [LockedAccount(*row) for row in rows]
        if len(fresh) != len(ids):
            missing = sorted(set(ids) - {account.id for account in fresh})
            raise LookupError(f"Accounts {missing} do not exist")
        _remember_locked(session, fresh)
        held = _held(session)
        assert held is not None
    return [held[account.id] for account in accounts]


@event.listens_for(Account, "after_update")
def _account_changed(_mapper: Any, _connection: Any, account: Account) -> None:
    # An account row changed through the ORM (disabled, a credit limit) in a transaction
    # that holds snapshots: they are no longer current, so the next lock reads again.
    session = object_session(account)
    if session is not None:
        session.info.pop(_LOCKED, None)


def _moved(session: Session, balances: dict[int, Decimal]) -> None:
    """Record the balances a write left: in the locked snapshots, and in any ``Account``
    the session has loaded (as its stored value, so it is not written back)."""
    held = _held(session) or {}
    for account_id, balance in balances.items():
        if account_id in held:
            held[account_id].balance = balance
        loaded = session.identity_map.get(_account_key(account_id))
        if loaded is not None:
            set_committed_value(loaded, "balance", balance)


def _account_key(account_id: int) -> Any:
    return Account.__mapper__.identity_key_from_primary_key((account_id,))


@dataclass(frozen=True, slots=True)
class _AccountId:
    """An account known by its id only (the account of a row to reverse)."""

    id: int


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

"""Accounts: creating, finding and configuring USER, GROUP and SHARED accounts.

Balances are not changed here: every balance change goes through :mod:`financial.ledger`.
USER account names are lower-cased, so ``Alice`` and ``alice`` are one account. Functions
take the session first and never commit; creation flushes to obtain the id.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from financial.errors import (
    AccountExists,
    AccountNotFound,
    InvalidAccount,
    InvalidAmount,
)
from financial.money import money
from financial.schema import Account, AccountTrx, AccountType, ActorKind, CreditLimitPolicy

__all__ = [
    "Actor",
    "account_type_of",
    "create_account",
    "disable_account",
    "enable_account",
    "get_account",
    "get_or_create_user_account",
    "latest_transactions",
    "list_accounts",
    "normalise_name",
    "set_credit_limit",
]

MAX_NAME_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Actor:
    """Who causes a ledger row: written into every row as ``actor_kind``/``actor_name``.

    Attributes:
        kind: ``"admin"``, ``"user"`` or ``"system"`` (:class:`~financial.schema.ActorKind`).
        name: the admin's or user's name, or the subsystem (``"printing"``) for system.
    """

    kind: str
    name: str

    def __post_init__(self) -> None:
        if self.kind not in {kind.value for kind in ActorKind}:
            raise ValueError(f"Actor kind '{self.kind}' is not one of admin, user, system")
        if not self.name or len(self.name) > MAX_NAME_LENGTH:
            raise ValueError(f"Actor name '{self.name}' must be 1-{MAX_NAME_LENGTH} characters")

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def account_type_of(value: str, error: type[Exception] = InvalidAccount) -> AccountType:
    """Return ``value`` as an :class:`AccountType`, or raise ``error`` quoting it."""
    try:
        return AccountType(value)
    except ValueError:
        raise error(f"Account type '{value}' is not one of USER, GROUP, SHARED") from None


def normalise_name(account_type: str, name: str) -> str:
    """Return the stored form of an account name: stripped, lower-case for USER.

    Raises :class:`InvalidAccount` for a name that is empty or too long.
    """
    if not isinstance(name, str):
        raise InvalidAccount(f"Account name {name!r} is not text")
    stored = name.strip()
    if account_type_of(account_type) is AccountType.USER:
        stored = stored.lower()
    if not stored:
        raise InvalidAccount(f"Account name '{name}' is empty")
    if len(stored) > MAX_NAME_LENGTH:
        raise InvalidAccount(f"Account name '{name[:40]}...' is longer than {MAX_NAME_LENGTH}")
    return stored


def create_account(
    session: Session, *, account_type: str, name: str, parent: Account | None = None
) -> Account:
    """Create and return an account with balance zero and no credit (policy NONE).

    ``parent`` is allowed for SHARED accounts only and must itself be a top-level SHARED
    account. Raises :class:`AccountExists`, or :class:`InvalidAccount` for a bad type,
    name or parent. Flushes to obtain the id.
    """
    kind = account_type_of(account_type)
    stored = normalise_name(kind, name)
    if parent is not None:
        if kind is not AccountType.SHARED:
            raise InvalidAccount(f"A {kind} account cannot have a parent ('{parent.name}')")
        if parent.account_type != AccountType.SHARED or parent.parent_id is not None:
            raise InvalidAccount(f"Parent '{parent.label}' is not a top-level SHARED account")
    if _find(session, kind, stored) is not None:
        raise AccountExists(kind, stored)
    account = Account(
        account_type=kind.value,
        name=stored,
        parent_id=parent.id if parent is not None else None,
        credit_limit_policy=CreditLimitPolicy.NONE.value,
    )
    try:
        with session.begin_nested():
            session.add(account)
    except IntegrityError as exc:  # created by a concurrent transaction meanwhile
        raise AccountExists(kind, stored) from exc
    return account


def get_account(
    session: Session, account_type: str, name: str, *, for_update: bool = False
) -> Account:
    """Return the account of that type and name, or raise :class:`AccountNotFound`.

    USER names are matched lower-case. With ``for_update`` the row is locked until the
    transaction ends (``SELECT ... FOR UPDATE`` on PostgreSQL) and re-read.
    """
    kind = account_type_of(account_type)
    stored = normalise_name(kind, name)
    account = _find(session, kind, stored, for_update=for_update)
    if account is None:
        raise AccountNotFound(kind, stored)
    return account


def get_or_create_user_account(session: Session, name: str) -> Account:
    """Return the USER account for ``name``, creating it (balance zero) if missing.

    Safe when two transactions create the same account at once: the loser of the race
    gets the winner's account.
    """
    stored = normalise_name(AccountType.USER, name)
    account = _find(session, AccountType.USER, stored)
    if account is not None:
        return account
    try:
        return create_account(session, account_type=AccountType.USER, name=stored)
    except AccountExists:
        account = _find(session, AccountType.USER, stored)
        if account is None:  # pragma: no cover - the conflicting row must be visible
            raise
        return account


def list_accounts(session: Session, *, account_type: str | None = None) -> list[Account]:
    """Return all accounts, or those of one type, ordered by type and name."""
    query = select(Account).order_by(Account.account_type, Account.name)
    if account_type is not None:
        query = query.where(Account.account_type == account_type_of(account_type).value)
    return list(session.scalars(query))


def set_credit_limit(
    session: Session,
    account: Account,
    policy: str,
    amount: Decimal | str | int | None = None,
) -> Account:
    """Set how far below zero ``account`` may be charged, and return it.

    ``policy`` is ``NONE`` (no credit), ``DEFAULT`` (the application's default limit,
    given to :func:`financial.ledger.charge`) or ``INDIVIDUAL`` with ``amount`` (zero or
    positive). ``amount`` must be omitted for the other policies. The ledger is not
    touched: this changes no balance.
    """
    try:
        chosen = CreditLimitPolicy(policy)
    except ValueError:
        raise InvalidAccount(
            f"Credit limit policy '{policy}' is not one of NONE, DEFAULT, INDIVIDUAL"
        ) from None
    limit: Decimal | None = None
    if chosen is CreditLimitPolicy.INDIVIDUAL:
        if amount is None:
            raise InvalidAccount("An INDIVIDUAL credit limit needs an amount")
        limit = money(amount)
        if limit < 0:
            raise InvalidAmount(f"Credit limit '{amount}' is negative")
    elif amount is not None:
        raise InvalidAccount(f"Credit limit policy {chosen} takes no amount (got '{amount}')")
    account.credit_limit_policy = chosen.value
    account.credit_limit = limit
    session.flush()
    return account


def disable_account(session: Session, account: Account) -> Account:
    """Disable ``account``: it can no longer be charged, send or receive transfers.

    Admin adjustments still work, so a disabled account can be settled.
    """
    account.disabled = True
    session.flush()
    return account


def enable_account(session: Session, account: Account) -> Account:
    """Enable ``account`` again."""
    account.disabled = False
    session.flush()
    return account


def latest_transactions(session: Session, account: Account, limit: int) -> list[AccountTrx]:
    """Return the account's ``limit`` most recent ledger rows, newest first."""
    if limit < 0:
        raise ValueError(f"limit {limit} is negative")
    query = (
        select(AccountTrx)
        .where(AccountTrx.account_id == account.id)
        .order_by(AccountTrx.created_at.desc(), AccountTrx.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def _find(
    session: Session, kind: AccountType, stored: str, *, for_update: bool = False
) -> Account | None:
    query = select(Account).where(Account.account_type == kind.value, Account.name == stored)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).one_or_none()

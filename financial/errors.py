"""The exceptions the accounting core raises; adapters translate them into their envelopes.

    FinancialError
    ├── InvalidAmount        a money value is malformed, lossy or out of range
    ├── InvalidAccount       an account type, name, parent or credit limit is refused
    ├── AccountNotFound      no account of that type and name
    ├── AccountExists        an account of that type and name already exists
    ├── AccountDisabled      a disabled account is charged or takes part in a transfer
    ├── InsufficientCredit   a charge would take the balance past its credit limit
    ├── TransferRefused      a transfer breaks one of the transfer rules (``rule`` names which)
    ├── ReversalRefused      a ledger row may not be reversed (``rule`` names why)
    └── InvalidSelection     a report filter is malformed

    RuntimeError
    └── LedgerMisuse         programmer error: writing to the ledger outside a transaction

Every ``FinancialError`` carries a readable ``message`` that quotes the bad value.
``LedgerMisuse`` is a bug in the caller, not bad input, so it is not a ``FinancialError``.
"""

from __future__ import annotations

from decimal import Decimal


class FinancialError(Exception):
    """Base of every error the accounting core raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidAmount(FinancialError):
    """Raised when a money value is a float, NaN, Infinity, an exponent, empty, has more
    than six decimal places, more than twelve integer digits, or is zero/negative where
    the operation needs a positive amount."""


class InvalidAccount(FinancialError):
    """Raised when an account type, an account name, a parent account or a credit limit
    is refused (unknown type, empty name, a parent that is not a top-level SHARED account,
    a negative credit limit ...)."""


class AccountNotFound(FinancialError):
    """Raised when no account of the given type and name exists."""

    def __init__(self, account_type: str, name: str) -> None:
        super().__init__(f"No {account_type} account named '{name}'")
        self.account_type = account_type
        self.name = name


class AccountExists(FinancialError):
    """Raised by account creation when an account of that type and name already exists."""

    def __init__(self, account_type: str, name: str) -> None:
        super().__init__(f"A {account_type} account named '{name}' already exists")
        self.account_type = account_type
        self.name = name


class AccountDisabled(FinancialError):
    """Raised when a disabled account is charged, or sends or receives a transfer."""

    def __init__(self, account_type: str, name: str) -> None:
        super().__init__(f"The {account_type} account '{name}' is disabled")
        self.account_type = account_type
        self.name = name


class InsufficientCredit(FinancialError):
    """Raised by a charge that would take the balance below ``-limit``.

    ``balance`` is the balance before the charge, ``amount`` the (positive) charge and
    ``limit`` the credit the account may use (``0`` when it has none).
    """

    def __init__(self, *, balance: Decimal, amount: Decimal, limit: Decimal) -> None:
        super().__init__(
            f"Charge of {amount:.6f} refused: balance {balance:.6f} with credit limit "
            f"{limit:.6f} allows at most {balance + limit:.6f}"
        )
        self.balance = balance
        self.amount = amount
        self.limit = limit


class TransferRefused(FinancialError):
    """Raised when a transfer breaks a rule; ``rule`` is a short machine name.

    Rules: ``transfers-disabled``, ``amount-not-positive``, ``minimum``, ``maximum``,
    ``self``, ``sender-disabled``, ``recipient-disabled``, ``sender-below-zero``.
    """

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


class ReversalRefused(FinancialError):
    """Raised when a ledger row may not be reversed; ``rule`` is a short machine name.

    Rules: ``already-reversed`` (``existing_id`` is the reversal that exists),
    ``is-reversal`` (a reversal is not reversed again), ``transfer`` (a transfer is
    undone by a transfer back, not by reversing one leg).
    """

    def __init__(self, rule: str, message: str, *, existing_id: int | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.existing_id = existing_id


class InvalidSelection(FinancialError):
    """Raised when a report filter is malformed: unknown account or transaction type,
    missing account name for GROUP/SHARED, naive dates, ``date_to`` before ``date_from``."""


class LedgerMisuse(RuntimeError):
    """Raised when the ledger is written outside a database transaction.

    Open the transaction first (``with session.begin():``, or the application's
    ``with db.transaction() as session:``) and call the ledger functions inside it.
    """

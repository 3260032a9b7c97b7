"""printsrv's accounting core: money, accounts, the append-only ledger, checks and reports.

Pure domain code on SQLAlchemy: it imports nothing from printsrv or any web library.
Functions take a ``Session`` first and never commit; the caller owns the transaction.

- :mod:`financial.money`: the one door for amounts (:func:`money`, :func:`to_wire`).
- :mod:`financial.schema`: the ``account`` and ``account_trx`` tables (:data:`metadata`).
- :mod:`financial.accounts`: creating, finding and configuring accounts.
- :mod:`financial.ledger`: every balance change (adjust, set, charge, reverse, transfer;
  :func:`post_set` for many accounts at once).
- :mod:`financial.checks`: the ledger's invariants (:func:`verify`).
- :mod:`financial.currency`: changing the base currency (exchange rates, conversion).
- :mod:`financial.reports`: CSV and PDF transaction reports.
- :mod:`financial.errors`: the exception tree.
"""

from financial.accounts import (
    Actor,
    create_account,
    disable_account,
    enable_account,
    get_account,
    get_or_create_user_account,
    latest_transactions,
    list_accounts,
    set_credit_limit,
)
from financial.checks import Problem, verify
from financial.errors import (
    AccountDisabled,
    AccountExists,
    AccountNotFound,
    FinancialError,
    InsufficientCredit,
    InvalidAccount,
    InvalidAmount,
    InvalidSelection,
    LedgerMisuse,
    ReversalRefused,
    TransferRefused,
)
from financial.ledger import (
    LedgerEntry,
    LockedAccount,
    TransferPolicy,
    adjust_balance,
    charge,
    credit_limit_of,
    lock_account_set,
    lock_accounts,
    post_set,
    reverse,
    set_balance,
    transfer,
)
from financial.money import ZERO, money, parse_wire_amount, to_wire
from financial.reports import TransactionFilter, end_of_day, iter_csv, start_of_day, write_pdf
from financial.schema import (
    Account,
    AccountTrx,
    AccountType,
    ActorKind,
    CreditLimitPolicy,
    TrxType,
    metadata,
)

__all__ = [
    "ZERO",
    "Account",
    "AccountDisabled",
    "AccountExists",
    "AccountNotFound",
    "AccountTrx",
    "AccountType",
    "Actor",
    "ActorKind",
    "CreditLimitPolicy",
    "FinancialError",
    "InsufficientCredit",
    "InvalidAccount",
    "InvalidAmount",
    "InvalidSelection",
    "LedgerEntry",
    "LedgerMisuse",
    "LockedAccount",
    "Problem",
    "ReversalRefused",
    "TransactionFilter",
    "TransferPolicy",
    "TransferRefused",
    "TrxType",
    "adjust_balance",
    "charge",
    "create_account",
    "credit_limit_of",
    "disable_account",
    "enable_account",
    "end_of_day",
    "get_account",
    "get_or_create_user_account",
    "iter_csv",
    "latest_transactions",
    "list_accounts",
    "lock_account_set",
    "lock_accounts",
    "metadata",
    "money",
    "parse_wire_amount",
    "post_set",
    "reverse",
    "set_balance",
    "set_credit_limit",
    "start_of_day",
    "to_wire",
    "transfer",
    "verify",
    "write_pdf",
]

"""Accounting in printsrv: the `financial` core with printsrv's config, user names and errors.

    REST / CLI / web app  ->  accounts.service  ->  financial (accounts, ledger, checks, reports)

This module is where the core meets the rest of printsrv (reports: `accounts.reports`):

- **Names.** USER account names are user names: they go through the aliases
  (`users.resolve_user_name`), so "S123456" reaches janet's account. GROUP names are
  lower-cased like group names; SHARED names are taken as they are.
- **Accounts.** Every user has a USER account and every group a GROUP account: `users`
  creates them with the user or group. A user or group that predates accounting gets its
  account the first time money moves; reading never creates one (the balance is zero).
- **Actors.** Every ledger row names who wrote it: `admin_actor`, `user_actor`.
- **Config.** `settings_of(snapshot)` reads the `financial.*` properties.
- **Errors.** The core's `FinancialError` tree is translated into `printsrv.errors` here,
  once (`financial_errors`, `translate`), so adapters only ever see printsrv errors. A
  refused transfer names its rule: "Transfer refused (minimum): ...", `reason` = rule.

Functions take the session first and never commit; the caller owns the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session

import financial
from financial import (
    Account,
    AccountTrx,
    AccountType,
    Actor,
    FinancialError,
    Problem,
    TransferPolicy,
)
from printsrv import errors
from printsrv.accounts.currency_settings import (
    BaseCurrencyChange,
    scale_amount_properties,
    scale_stored_amounts,
)
from printsrv.people import group_defaults
from printsrv.people import users as user_service
from printsrv.platform import properties as config_service
from printsrv.platform.models import ConfigProperty
from printsrv.platform.properties import Snapshot
from printsrv.platform.security import SecretHasher

__all__ = [
    "FINANCIAL_ERRORS",
    "TRANSFER_RULES",
    "AccountDetails",
    "AccountingSettings",
    "account_details",
    "add_shared_account",
    "admin_actor",
    "balance_of",
    "change_balance",
    "change_base_currency",
    "check_comment",
    "disable_group_account",
    "financial_errors",
    "list_accounts",
    "parse_account_type",
    "parse_amount",
    "parse_currency_code",
    "parse_exchange_rate",
    "rename_user_account",
    "set_credit_limit",
    "settings_of",
    "stored_account_name",
    "transfer_credit",
    "translate",
    "user_actor",
    "user_balance",
    "verify_ledger",
]

MAX_COMMENT_LENGTH = 1000

# Each concrete error of the core, and the printsrv error it becomes (its message is kept).
FINANCIAL_ERRORS: dict[type[FinancialError], type[errors.PrintsrvError]] = {
    financial.InvalidAmount: errors.InvalidInput,
    financial.InvalidAccount: errors.InvalidInput,
    financial.InvalidSelection: errors.InvalidInput,
    financial.AccountNotFound: errors.NotFound,
    financial.AccountExists: errors.Conflict,
    financial.AccountDisabled: errors.Conflict,
    financial.InsufficientCredit: errors.Conflict,
    financial.ReversalRefused: errors.Conflict,
    financial.TransferRefused: errors.Conflict,
}

# A refused transfer becomes the error that says what kind of refusal it is: bad input
# (400), a switched-off feature (403), someone who does not exist (404), or a state that
# forbids it now (409).
TRANSFER_RULES: dict[str, type[errors.PrintsrvError]] = {
    "transfers-disabled": errors.NotAllowed,
    "amount-not-positive": errors.InvalidInput,
    "minimum": errors.InvalidInput,
    "maximum": errors.InvalidInput,
    "self": errors.InvalidInput,
    "recipient-unknown": errors.NotFound,
    "sender-disabled": errors.Conflict,
    "recipient-disabled": errors.Conflict,
    "sender-below-zero": errors.Conflict,
}


# --- errors, actors, settings, input ------------------------------------------------------------


def translate(error: FinancialError) -> errors.PrintsrvError:
    """The printsrv error for an error of the accounting core, keeping its message.

    A refused transfer or reversal names its rule in the message and in `reason`.
    """
    if isinstance(error, financial.TransferRefused):
        cls = TRANSFER_RULES.get(error.rule, errors.Conflict)
        return cls(f"Transfer refused ({error.rule}): {error.message}", reason=error.rule)
    if isinstance(error, financial.ReversalRefused):
        return errors.Conflict(
            f"Reversal refused ({error.rule}): {error.message}", reason=error.rule
        )
    for cls in type(error).__mro__:
        if cls in FINANCIAL_ERRORS:
            return FINANCIAL_ERRORS[cls](error.message)
    return errors.PrintsrvError(error.message)


@contextmanager
def financial_errors() -> Iterator[None]:
    """Turn any `FinancialError` raised inside the block into its printsrv error."""
    try:
        yield
    except FinancialError as error:
        raise translate(error) from error


def admin_actor(name: str) -> Actor:
    """The actor of a ledger row written by an administrator (REST admin, CLI)."""
    return Actor("admin", name)


def user_actor(name: str) -> Actor:
    """The actor of a ledger row written by a user (a transfer)."""
    return Actor("user", name)


@dataclass(frozen=True)
class AccountingSettings:
    """The `financial.*` config properties, typed.

    Attributes:
        currency: ISO 4217 code every amount is in.
        default_credit_limit: the limit of accounts whose credit-limit policy is DEFAULT.
        transfers_enabled: whether users may transfer credit to each other.
        transfer_minimum: the smallest amount a user may transfer.
        transfer_maximum: the largest amount a user may transfer.
    """

    currency: str
    default_credit_limit: Decimal
    transfers_enabled: bool
    transfer_minimum: Decimal
    transfer_maximum: Decimal

    def transfer_policy(self) -> TransferPolicy:
        """The core's transfer rules; NotAllowed when the minimum is above the maximum."""
        try:
            return TransferPolicy(
                enabled=self.transfers_enabled,
                minimum=self.transfer_minimum,
                maximum=self.transfer_maximum,
            )
        except financial.InvalidAmount as error:
            raise errors.NotAllowed(
                f"Transfers are unavailable until an administrator fixes "
                f"financial.user.transfers.amount-min/-max: {error.message}",
                reason="transfers-misconfigured",
            ) from error


def settings_of(snapshot: Snapshot) -> AccountingSettings:
    """Read the accounting settings from a config snapshot."""
    return AccountingSettings(
        currency=snapshot["financial.currency-code"],
        default_credit_limit=snapshot["financial.credit-limit.default"],
        transfers_enabled=snapshot["financial.user.transfers.enable"],
        transfer_minimum=snapshot["financial.user.transfers.amount-min"],
        transfer_maximum=snapshot["financial.user.transfers.amount-max"],
    )


def parse_account_type(value: str, *, param: str = "type") -> AccountType:
    """`USER`, `GROUP` or `SHARED` (exactly, as the contract spells them); InvalidInput else."""
    try:
        return AccountType(value)
    except ValueError:
        raise errors.InvalidInput(
            f"Parameter {param!r} has value {value!r}: not one of USER, GROUP, SHARED",
            reason=param,
        ) from None


def parse_amount(text: str, *, param: str = "amount") -> Decimal:
    """An amount in the strict wire form ("2.50", "-15"); InvalidInput naming `param` else."""
    try:
        return financial.parse_wire_amount(text)
    except financial.InvalidAmount as error:
        raise errors.InvalidInput(f"Parameter {param!r}: {error.message}", reason=param) from None


def check_comment(text: str, *, param: str = "details") -> str:
    """A ledger comment: at most 1000 characters, no NUL; InvalidInput naming `param` else."""
    if len(text) > MAX_COMMENT_LENGTH:
        raise errors.InvalidInput(
            f"Parameter {param!r} is longer than {MAX_COMMENT_LENGTH} characters", reason=param
        )
    if "\x00" in text:
        raise errors.InvalidInput(f"Parameter {param!r} contains a NUL character", reason=param)
    return text


# --- finding accounts ----------------------------------------------------------------------------


def stored_account_name(session: Session, account_type: AccountType, name: str) -> str:
    """The account name a name from outside means: aliases for USER, lower case for GROUP."""
    if account_type is AccountType.USER:
        return user_service.resolve_user_name(session, name)
    if account_type is AccountType.GROUP:
        return user_service.normalise_name(name, what="Group name")
    return name


def _owner_exists(session: Session, account_type: AccountType, name: str) -> bool:
    """Whether the user or group an account would belong to exists (SHARED: never implied)."""
    if account_type is AccountType.USER:
        return user_service.find_user(session, name) is not None
    if account_type is AccountType.GROUP:
        try:
            user_service.get_group(session, name)
        except errors.NotFound:
            return False
        return True
    return False


def _find(session: Session, account_type: AccountType, name: str) -> tuple[str, Account | None]:
    """(stored name, the account or None when its user or group has none yet).

    NotFound when neither the account nor its owner exists.
    """
    stored = stored_account_name(session, account_type, name)
    try:
        with financial_errors():
            return stored, financial.get_account(session, account_type, stored)
    except errors.NotFound:
        if _owner_exists(session, account_type, stored):
            return stored, None
        raise


def _account(session: Session, account_type: str, name: str) -> Account:
    """The account to change, created for a user or group that has none yet."""
    kind = parse_account_type(account_type)
    stored, account = _find(session, kind, name)
    if account is not None:
        return account
    with financial_errors():
        if kind is AccountType.USER:
            return group_defaults.open_user_account(session, stored)
        return financial.create_account(session, account_type=kind, name=stored)


# Built once (every transfer runs it), with one bound parameter per name.
_TRANSFER_ACCOUNTS = and_(
    Account.__table__.c.account_type == AccountType.USER.value,
    Account.__table__.c.name.in_([bindparam("sender"), bindparam("recipient")]),
)


def _transfer_accounts(
    session: Session, sender: str, recipient: str
) -> list[Account | financial.LockedAccount]:
    """The USER accounts of these two (canonical) user names, locked, in one query; missing
    ones created (a new row is this transaction's alone until it commits)."""
    rows = financial.lock_accounts(
        session, _TRANSFER_ACCOUNTS, {"sender": sender, "recipient": recipient}
    )
    found: dict[str, Account | financial.LockedAccount] = {
        account.name: account for account in rows
    }
    return [
        found.get(name) or group_defaults.open_user_account(session, name)
        for name in (sender, recipient)
    ]


# --- balances ------------------------------------------------------------------------------------


def balance_of(session: Session, account_type: str, name: str) -> Decimal:
    """The balance of the account of that type and name (USER names through the aliases).

    Zero for a user or group that has no account yet. InvalidInput for a bad type or
    name, NotFound when there is no such account.
    """
    kind = parse_account_type(account_type)
    _, account = _find(session, kind, name)
    return account.balance if account is not None else financial.ZERO


def user_balance(session: Session, user_name: str) -> Decimal:
    """The balance of a user's own USER account (zero when it has none yet)."""
    return balance_of(session, AccountType.USER, user_name)


def change_balance(
    session: Session,
    *,
    account_type: str,
    name: str,
    amount: Decimal,
    adjust: bool,
    comment: str,
    actor: Actor,
) -> Decimal:
    """Set the balance to `amount`, or with `adjust` add `amount` to it; return the balance.

    Either way one ADJUST row with `comment` is written for the difference (none when
    setting the balance it already has). Adjusting by zero is refused (InvalidInput).
    """
    account = _account(session, account_type, name)
    comment = check_comment(comment)
    with financial_errors():
        if adjust:
            row = financial.adjust_balance(
                session, account=account, amount=amount, comment=comment, actor=actor
            )
            return row.balance_after
        return financial.set_balance(
            session, account=account, amount=amount, comment=comment, actor=actor
        )


def transfer_credit(
    session: Session,
    *,
    sender: str,
    recipient: str | user_service.UserRef,
    amount: Decimal,
    comment: str,
    settings: AccountingSettings,
) -> tuple[financial.LedgerEntry, financial.LedgerEntry]:
    """Move `amount` from user `sender` to user `recipient`; return (debit, credit) rows.

    `sender` is the authenticated caller. `recipient` is a name, which goes through the
    aliases, or the user already found in this transaction (`users.find_user_refs`); it
    must be an enabled user. The rules come from `settings`; every refusal is raised
    naming its rule (see `TRANSFER_RULES`).
    """
    policy = settings.transfer_policy()
    if not policy.enabled:
        # Checked before the recipient is looked up, so that a switched-off feature does
        # not tell callers which user names exist.
        raise translate(
            financial.TransferRefused("transfers-disabled", "Transfers between users are disabled")
        )
    comment = check_comment(comment, param="comment")
    if isinstance(recipient, user_service.UserRef):
        target: user_service.UserRef | None = recipient
    else:
        (target,) = user_service.find_user_refs(session, recipient)
    if target is None:
        assert isinstance(recipient, str)
        raise translate(
            financial.TransferRefused(
                "recipient-unknown", f"No user '{recipient.strip().lower()}' to transfer to"
            )
        )
    if not target.enabled:
        raise translate(
            financial.TransferRefused(
                "recipient-disabled", f"User '{target.user_name}' is disabled"
            )
        )
    with financial_errors():
        source, destination = _transfer_accounts(session, sender, target.user_name)
        return financial.transfer(
            session,
            sender=source,
            recipient=destination,
            amount=amount,
            comment=comment,
            actor=user_actor(sender),
            policy=policy,
        )


# --- accounts for the command line --------------------------------------------------------------


@dataclass(frozen=True)
class AccountDetails:
    """An account with what `printsrv account show` prints about it.

    Attributes:
        account: the account row.
        credit_limit: how far below zero it may be charged now (policy applied).
        latest: its most recent ledger rows, newest first.
    """

    account: Account
    credit_limit: Decimal
    latest: list[AccountTrx]


def add_shared_account(session: Session, name: str, *, parent: str | None = None) -> Account:
    """Create a SHARED account, optionally under a top-level SHARED `parent`."""
    with financial_errors():
        above = financial.get_account(session, AccountType.SHARED, parent) if parent else None
        return financial.create_account(
            session, account_type=AccountType.SHARED, name=name, parent=above
        )


def list_accounts(session: Session, account_type: str | None = None) -> list[Account]:
    """Every account, or those of one type, sorted by type and name."""
    kind = parse_account_type(account_type) if account_type is not None else None
    return financial.list_accounts(session, account_type=kind)


def account_details(
    session: Session,
    account_type: str,
    name: str,
    *,
    default_credit_limit: Decimal,
    limit: int = 10,
) -> AccountDetails:
    """An existing account, its effective credit limit and its latest `limit` ledger rows."""
    kind = parse_account_type(account_type)
    stored = stored_account_name(session, kind, name)
    with financial_errors():
        account = financial.get_account(session, kind, stored)
        credit = financial.credit_limit_of(account, default_credit_limit=default_credit_limit)
    return AccountDetails(account, credit, financial.latest_transactions(session, account, limit))


def set_credit_limit(session: Session, account_type: str, name: str, limit: str) -> Account:
    """Set an account's credit limit: `none`, `default` or an amount (its own limit)."""
    account = _account(session, account_type, name)
    with financial_errors():
        if limit.lower() in ("none", "default"):
            return financial.set_credit_limit(session, account, limit.upper())
        return financial.set_credit_limit(
            session, account, "INDIVIDUAL", parse_amount(limit, param="limit")
        )


def disable_group_account(session: Session, group_name: str) -> bool:
    """Logically delete a group's GROUP account; return whether it was disabled already.

    A disabled account can no longer be charged or take part in a transfer; its ledger
    rows stay, and admin adjustments still work so it can be settled. The account of a
    group that predates accounting is made first. NotFound when neither the group nor an
    account of that name exists (the account of a deleted group can still be disabled).
    """
    account = _account(session, AccountType.GROUP, group_name)
    was_disabled = account.disabled
    with financial_errors():
        financial.disable_account(session, account)
    return was_disabled


def verify_ledger(session: Session) -> list[Problem]:
    """Every broken ledger invariant (balance != sum of its rows, broken transfers ...)."""
    return financial.verify(session)


def rename_user_account(session: Session, old_name: str, new_name: str) -> None:
    """Move a user's USER account to a new user name (erasure renames users anonymously).

    The ledger rows stay with the account; nothing happens when the user had no account.
    `users.erase_user` does this itself; this is the same step for other callers.
    """
    with financial_errors():
        user_service.move_user_account(session, old_name, new_name)


# --- base currency -------------------------------------------------------------------------------

CURRENCY_PROPERTY = "financial.currency-code"
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")


def parse_currency_code(value: str, *, param: str) -> str:
    """An ISO 4217 code in use, written as three upper-case letters; InvalidInput else."""
    if not _CURRENCY_CODE.fullmatch(value) or value not in config_service.ISO_4217_CODES:
        raise errors.InvalidInput(
            f"Parameter {param!r} has value {value!r}: not an ISO 4217 currency code "
            "such as EUR, USD or GBP (three upper-case letters)",
            reason=param,
        )
    return value


def parse_exchange_rate(text: str, *, param: str = "exchangeRate") -> Decimal:
    """A positive exchange rate in plain decimal notation ("1.08"); InvalidInput else."""
    try:
        return financial.currency.parse_rate(text)
    except financial.InvalidAmount as error:
        raise errors.InvalidInput(f"Parameter {param!r}: {error.message}", reason=param) from None


def _current_currency(session: Session) -> str:
    """The stored currency code, its row locked until the transaction ends (PostgreSQL).

    The lock makes a second change that started meanwhile wait and then see the new code,
    so it is refused instead of converting every balance twice. (With no stored row yet
    there is nothing to lock: the second change then fails on inserting the same row, and
    its whole transaction, ledger rows included, rolls back.)
    """
    row = session.scalars(
        select(ConfigProperty)
        .where(ConfigProperty.name == CURRENCY_PROPERTY)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        return config_service.get_definition(CURRENCY_PROPERTY).default
    return row.value


def change_base_currency(
    session: Session,
    *,
    source: str,
    target: str,
    rate: Decimal,
    actor: Actor,
    hasher: SecretHasher,
    dry_run: bool,
) -> BaseCurrencyChange:
    """Convert every account from `source` to `target` at `rate` and make `target` the currency.

    Each non-zero balance gets an ADJUST row to zero and one to balance x rate (see
    `financial.currency.change_currency`); INDIVIDUAL credit limits are scaled, and so are
    the amounts in the config (`financial.credit-limit.default`, the transfer minimum and
    maximum) and the other amounts stored in the currency: group defaults and quotas,
    printers' prices, waiting prints' quotes (`currency_settings`); the config property
    `financial.currency-code` becomes `target`. All of it is written in the caller's
    transaction (the config table is in the same database), so a failure anywhere leaves
    balances, ledger, amounts and currency code as they were. With `dry_run` nothing is
    written. InvalidInput when `source` is not the current currency, when the codes are
    equal, or when a converted amount would not fit the ledger, its property or its column.
    """
    if source == target:
        raise errors.InvalidInput(
            f"Parameter 'currencyCodeTo' has value {target!r}: the same as currencyCodeFrom",
            reason="currencyCodeTo",
        )
    current = _current_currency(session)
    if source != current:
        raise errors.InvalidInput(
            f"Parameter 'currencyCodeFrom' has value {source!r}: the current currency "
            f"({CURRENCY_PROPERTY}) is {current!r}",
            reason="currencyCodeFrom",
        )
    try:
        change = financial.currency.change_currency(
            session, source=source, target=target, rate=rate, actor=actor, dry_run=dry_run
        )
    except financial.InvalidAmount as error:
        raise errors.InvalidInput(
            f"Parameter 'exchangeRate': {error.message}", reason="exchangeRate"
        ) from None
    scaled = scale_amount_properties(
        session, rate=rate, hasher=hasher, actor=str(actor), dry_run=dry_run
    )
    stored = scale_stored_amounts(session, rate=rate, dry_run=dry_run)
    if not dry_run:
        config_service.set_property(
            session, CURRENCY_PROPERTY, target, hasher=hasher, actor=str(actor)
        )
    return BaseCurrencyChange(change, scaled, stored.amounts, stored.printers)

"""What users and administrators ask of the money, each one a unit of work of its own.

    REST / web app  ->  accounts.actions  ->  accounts.service  ->  financial

An adapter reads its request into plain values and awaits one function here. The function
checks the caller, reads the accounting settings, parses what was asked, opens the
transaction in one of the database's threads (`Database.run`), makes the change through
`accounts.service` and raises `printsrv.errors`.

Given a `KeyedRequest` (the request's Idempotency-Key, and how the adapter renders an
answer), a change is made at most once per key: `idempotency.once` claims the key and
stores the answer in the change's own transaction, and a retry gets that answer back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, overload

from sqlalchemy.orm import Session

from printsrv.accounts import idempotency
from printsrv.accounts import service as accounting
from printsrv.accounts.idempotency import KeyedRequest, Reply
from printsrv.people import users
from printsrv.platform.security import BasicCredentials

if TYPE_CHECKING:
    from printsrv.operations.installation import Installation

__all__ = [
    "BalanceChange",
    "Sender",
    "admin_caller",
    "caller_balance",
    "change_balance",
    "transfer",
]

Sender = str | BasicCredentials
"""Who sends a transfer: the user name of a user the adapter has let in already (a web app
session), or a user name (or alias) and UUID to check (the REST user services)."""

RequestCheck = Callable[[], object]
"""The adapter's own check of how its request is written (unknown or repeated parameters),
run once the caller is let in: a stranger gets 401 whatever they sent."""


async def transfer(
    installation: Installation,
    *,
    sender: Sender,
    recipient: str,
    amount: str,
    comment: str = "",
    check_request: RequestCheck | None = None,
    keyed: KeyedRequest[None] | None = None,
) -> Reply | None:
    """Move `amount` (wire form, "2.50") from `sender` to user `recipient` (a name or alias).

    In this order: the sender is let in (NotAuthenticated; the recipient is found in the
    same query), `check_request` runs, the amount is parsed (InvalidInput); then, in one
    transaction, the `financial.user.transfers.*` rules are applied and the two ledger rows
    written (every refusal names its rule: `accounting.TRANSFER_RULES`). The sender is only
    ever the caller, never a parameter of the request.

    Returns None, or with `keyed` the answer to give (`idempotency.once`): a refusal after
    the key is claimed is stored and replayed like a success.
    """
    unit = functools.partial(
        _transfer_unit, installation, sender, recipient, amount, comment, check_request, keyed
    )
    return await installation.db.run(unit)


def _transfer_unit(
    installation: Installation,
    sender: Sender,
    recipient: str,
    amount: str,
    comment: str,
    check_request: RequestCheck | None,
    keyed: KeyedRequest[None] | None,
) -> Reply | None:
    if isinstance(sender, str):
        # Nothing to let in: a malformed request is refused before the database is asked.
        value = _checked_amount(amount, check_request)
        with installation.db.transaction() as session:
            return _transfer(installation, session, sender, recipient, value, comment, keyed)
    with installation.db.transaction() as session:
        caller, (found,) = users.authenticate_refs(
            session, sender.username, sender.password, recipient, hasher=installation.hasher
        )
        value = _checked_amount(amount, check_request)
        target = found or recipient
        return _transfer(installation, session, caller.user_name, target, value, comment, keyed)


def _checked_amount(amount: str, check_request: RequestCheck | None) -> Decimal:
    if check_request is not None:
        check_request()
    return accounting.parse_amount(amount)


def _transfer(
    installation: Installation,
    session: Session,
    sender: str,
    recipient: str | users.UserRef,
    amount: Decimal,
    comment: str,
    keyed: KeyedRequest[None] | None,
) -> Reply | None:
    """The transfer itself, in the transaction the sender was let in by."""
    settings = accounting.settings_of(installation.config.snapshot())

    def apply(session: Session) -> None:
        accounting.transfer_credit(
            session,
            sender=sender,
            recipient=recipient,
            amount=amount,
            comment=comment,
            settings=settings,
        )

    if keyed is None:
        apply(session)
        return None
    return idempotency.once(session, keyed, caller=idempotency.user_caller(sender), work=apply)


async def caller_balance(
    installation: Installation,
    credentials: BasicCredentials,
    *,
    check_request: RequestCheck | None = None,
) -> Decimal:
    """The balance of the user whose name (or alias) and UUID these are.

    One read transaction: the caller is let in (NotAuthenticated), `check_request` runs,
    and their USER account's balance is read (zero when they have no account yet).
    """

    def read() -> Decimal:
        with installation.db.read() as session:
            caller, _ = users.authenticate_refs(
                session, credentials.username, credentials.password, hasher=installation.hasher
            )
            if check_request is not None:
                check_request()
            return accounting.user_balance(session, caller.user_name)

    return await installation.db.run(read)


@dataclass(frozen=True)
class BalanceChange:
    """An administrator's change of a balance, its parameters checked by the adapter.

    Attributes:
        account_type: USER, GROUP or SHARED.
        name: the account's name (USER names go through the aliases).
        amount: the new balance, or with `adjust` the amount to add to it.
        adjust: whether `amount` is added rather than set.
        comment: the ADJUST row's comment.
        admin: the administrator's name, written as the row's actor.
    """

    account_type: str
    name: str
    amount: Decimal
    adjust: bool
    comment: str
    admin: str

    def apply(self, session: Session) -> Decimal:
        """Make the change in `session`'s transaction; return the resulting balance."""
        return accounting.change_balance(
            session,
            account_type=self.account_type,
            name=self.name,
            amount=self.amount,
            adjust=self.adjust,
            comment=self.comment,
            actor=accounting.admin_actor(self.admin),
        )


def admin_caller(admin: str) -> str:
    """The scope of an administrator's Idempotency-Keys."""
    return f"admin:{admin}"


@overload
async def change_balance(
    installation: Installation, change: BalanceChange, keyed: None = None
) -> Decimal: ...


@overload
async def change_balance(
    installation: Installation, change: BalanceChange, keyed: KeyedRequest[Decimal]
) -> Reply: ...


async def change_balance(
    installation: Installation,
    change: BalanceChange,
    keyed: KeyedRequest[Decimal] | None = None,
) -> Decimal | Reply:
    """Set or adjust a balance with one ADJUST row (`accounting.change_balance`), in one
    transaction; the resulting balance, or with `keyed` the answer to give
    (`idempotency.once`, the key scoped to the administrator)."""

    def unit() -> Decimal | Reply:
        with installation.db.transaction() as session:
            if keyed is None:
                return change.apply(session)
            return idempotency.once(
                session, keyed, caller=admin_caller(change.admin), work=change.apply
            )

    return await installation.db.run(unit)

"""Provisioning a user from outside (JSON-RPC's addInternalUser and setUserProperties): their
fields, credentials and USER account, changed together in the caller's transaction.

    rpc  ->  people.provisioning  ->  people.users, accounts.service

Functions take the session first and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from printsrv.accounts import service as accounting
from printsrv.people import users
from printsrv.people.models import User
from printsrv.platform.security import SecretHasher

__all__ = ["AccountChanges", "provision_user", "update_user"]


@dataclass(frozen=True)
class AccountChanges:
    """Changes to a user's USER account, made by an administrator.

    Attributes:
        balance: a new balance (one ADJUST row for the difference), or None to keep it.
        credit_limit: "none", "default" or an amount (see `accounting.set_credit_limit`),
            or None to keep it.
        comment: the ADJUST row's comment.
        admin: who asks, written as the ADJUST row's actor.
    """

    balance: Decimal | None
    credit_limit: str | None
    comment: str
    admin: str


def provision_user(
    session: Session,
    name: str,
    changes: users.UserChanges,
    *,
    account: AccountChanges | None = None,
    hasher: SecretHasher,
) -> bool:
    """Create user `name` with `changes`, or update them when they exist (a deleted user
    is restored); then make the `account` changes. Returns whether the user was created."""
    user = users.find_user(session, name, include_deleted=True)
    created = user is None
    if user is None:
        user = users.add_user(session, name)
    else:
        users.restore_user(session, user)
    users.update_user(session, user, changes, hasher=hasher)
    _change_account(session, user, account)
    return created


def update_user(
    session: Session,
    name: str,
    changes: users.UserChanges,
    *,
    removals: users.UserChanges | None = None,
    account: AccountChanges | None = None,
    hasher: SecretHasher,
) -> User:
    """Change an existing (live) user: `removals` clear fields first, then `changes` set
    them (so a field both removed and given ends up given), then the `account` changes.
    NotFound when there is no such user."""
    user = users.get_user(session, name)
    if removals is not None:
        users.update_user(session, user, removals, hasher=hasher)
    users.update_user(session, user, changes, hasher=hasher)
    _change_account(session, user, account)
    return user


def _change_account(session: Session, user: User, changes: AccountChanges | None) -> None:
    if changes is None:
        return
    if changes.balance is not None:
        accounting.change_balance(
            session,
            account_type="USER",
            name=user.user_name,
            amount=changes.balance,
            adjust=False,
            comment=changes.comment,
            actor=accounting.admin_actor(changes.admin),
        )
    if changes.credit_limit is not None:
        accounting.set_credit_limit(session, "USER", user.user_name, changes.credit_limit)

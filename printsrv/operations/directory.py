"""The admin console's people and money: finding users, a user's page, groups, SHARED accounts.

Each public function is one unit of work in its own transaction (read or write) and raises
`printsrv.errors`; the console's handlers (printsrv/web/admin/people.py) parse, call one of
these, and render. Money never moves here: a balance changes through
`printsrv.accounts.actions.change_balance`, the REST and JSON-RPC adjustments' own path.

User search matches the start of the user name, the full name, the email address or the
card number, case-insensitively. A prefix is one index range on each column (migration
`0021_admin2_user_search` adds the indexes), so a search costs the same over 100,000 users
as over 100 (bench/admin_search.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

import financial
from financial import Account, AccountTrx, AccountType
from printsrv import errors
from printsrv.accounts import service as accounting
from printsrv.documents.log import DocumentFilter, LogEntry, list_documents
from printsrv.operations.installation import Installation
from printsrv.people import users as user_service
from printsrv.people.group_defaults import GroupDefaults
from printsrv.people.models import User, UserGroup

__all__ = [
    "LEDGER_PAGE",
    "SEARCH_PAGE",
    "AccountLine",
    "GroupView",
    "LedgerPage",
    "UserFound",
    "UserPage",
    "UserSearch",
    "add_shared_account",
    "change_group_defaults",
    "change_membership",
    "group_view",
    "list_group_views",
    "list_shared_accounts",
    "regenerate_uuid",
    "search_users",
    "set_user_enabled",
    "user_page",
]

SEARCH_PAGE: Final = 25
LEDGER_PAGE: Final = 20
DOCUMENTS_SHOWN: Final = 10
MAX_QUERY: Final = 100

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UserFound:
    """One user in a search's results."""

    user_name: str
    full_name: str
    email: str
    card_number: str | None
    enabled: bool


@dataclass(frozen=True)
class UserSearch:
    """A page of users matching `query` (all users for an empty one), sorted by name.

    `page` counts from 0; `has_next` says whether another page follows.
    """

    query: str
    page: int
    users: list[UserFound]
    has_next: bool


def _like_prefix(text: str) -> str:
    # LIKE's wildcards typed by the admin are literal characters.
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def search_users(installation: Installation, query: str, *, page: int = 0) -> UserSearch:
    """Users whose name, full name, email or card number starts with `query` (any case).

    InvalidInput for a negative page or a query longer than 100 characters.
    """
    query = query.strip()
    if len(query) > MAX_QUERY:
        raise errors.InvalidInput(f"The search is longer than {MAX_QUERY} characters.", reason="q")
    if page < 0:
        raise errors.InvalidInput(f"Page {page} is negative.", reason="page")
    statement = select(
        User.user_name, User.full_name, User.email, User.card_number, User.enabled
    ).where(User.deleted_at.is_(None))
    if query:
        pattern = _like_prefix(query.lower())
        statement = statement.where(
            or_(
                func.lower(User.user_name).like(pattern, escape="\\"),
                func.lower(User.full_name).like(pattern, escape="\\"),
                func.lower(User.email).like(pattern, escape="\\"),
                func.lower(User.card_number).like(pattern, escape="\\"),
            )
        )
    # One row more than a page says whether there is a next one, without counting them all.
    statement = statement.order_by(User.user_name).offset(page * SEARCH_PAGE).limit(SEARCH_PAGE + 1)
    with installation.db.read() as session:
        rows = [UserFound(*row) for row in session.execute(statement)]
    return UserSearch(query, page, rows[:SEARCH_PAGE], len(rows) > SEARCH_PAGE)


@dataclass(frozen=True)
class LedgerPage:
    """A page of an account's ledger, newest first."""

    rows: list[AccountTrx]
    page: int
    has_next: bool


@dataclass(frozen=True)
class UserPage:
    """What the console shows of one user.

    Attributes:
        user: the user row (aliases and groups loaded).
        balance: the USER account's balance (zero when it has no account yet).
        credit_limit: how far below zero it may be charged now (its policy applied).
        credit_policy: NONE, DEFAULT or INDIVIDUAL ("DEFAULT" without an account yet).
        ledger: a page of the account's rows.
        documents: the user's latest documents in the log.
    """

    user: User
    balance: Decimal
    credit_limit: Decimal
    credit_policy: str
    ledger: LedgerPage
    documents: list[LogEntry]


def _ledger_page(session: Session, account: Account | None, page: int) -> LedgerPage:
    if account is None:
        return LedgerPage([], page, False)
    rows = list(
        session.scalars(
            select(AccountTrx)
            .where(AccountTrx.account_id == account.id)
            .order_by(AccountTrx.created_at.desc(), AccountTrx.id.desc())
            .offset(page * LEDGER_PAGE)
            .limit(LEDGER_PAGE + 1)
        )
    )
    return LedgerPage(rows[:LEDGER_PAGE], page, len(rows) > LEDGER_PAGE)


def _find_account(session: Session, kind: AccountType, name: str) -> Account | None:
    try:
        return financial.get_account(session, kind, name)
    except financial.AccountNotFound:
        return None


def user_page(installation: Installation, name: str, *, ledger_page: int = 0) -> UserPage:
    """The user `name` (or an alias of theirs) with their money and documents; NotFound
    when there is no such user, InvalidInput for a negative ledger page."""
    if ledger_page < 0:
        raise errors.InvalidInput(f"Page {ledger_page} is negative.", reason="page")
    default_limit = accounting.settings_of(installation.config.snapshot()).default_credit_limit
    with installation.db.read() as session:
        user = user_service.get_user(session, name)
        _ = user.aliases, user.groups  # loaded before the session closes
        account = _find_account(session, AccountType.USER, user.user_name)
        if account is None:
            balance, limit, policy = financial.ZERO, default_limit, "DEFAULT"
        else:
            balance = account.balance
            limit = financial.credit_limit_of(account, default_credit_limit=default_limit)
            policy = account.credit_limit_policy
        ledger = _ledger_page(session, account, ledger_page)
        documents = list_documents(session, DocumentFilter(limit=DOCUMENTS_SHOWN, user_id=user.id))
        session.expunge_all()
    return UserPage(user, balance, limit, policy, ledger, documents)


def set_user_enabled(installation: Installation, name: str, enabled: bool) -> str:
    """Enable or disable a user (a disabled one can neither log in nor print); the name."""
    with installation.db.transaction() as session:
        return user_service.set_enabled(session, name, enabled).user_name


def regenerate_uuid(installation: Installation, name: str) -> str:
    """A new UUID credential for the user, the old one void at once; returned this once
    (only its keyed hash is stored)."""
    with installation.db.transaction() as session:
        return user_service.issue_uuid(session, name, hasher=installation.hasher)


# --- groups ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupView:
    """A group with its members and the defaults it gives new members' accounts.

    Attributes:
        name: the group's name.
        members: the members' user names, sorted.
        initial_credit: credit a member's new account opens with (None: none set).
        credit_limit_policy, credit_limit: the limit a member's new account gets.
        balance: the GROUP account's balance.
    """

    name: str
    members: list[str]
    initial_credit: Decimal | None
    credit_limit_policy: str | None
    credit_limit: Decimal | None
    balance: Decimal


def _group_view(session: Session, group: UserGroup, members: list[str]) -> GroupView:
    account = _find_account(session, AccountType.GROUP, group.name)
    return GroupView(
        group.name,
        members,
        group.initial_credit,
        group.credit_limit_policy,
        group.credit_limit,
        account.balance if account is not None else financial.ZERO,
    )


def list_group_views(installation: Installation) -> list[GroupView]:
    """Every group, sorted by name, with its members and defaults."""
    with installation.db.read() as session:
        groups = session.scalars(select(UserGroup).order_by(UserGroup.name)).all()
        return [
            _group_view(session, group, user_service.list_members(session, group.name))
            for group in groups
        ]


def change_group_defaults(
    installation: Installation, name: str, defaults: GroupDefaults
) -> GroupView:
    """Store the defaults a group gives its members' new accounts (as JSON-RPC's
    setUserGroupProperties); the group as it is now. InvalidInput naming the field
    (`group_defaults`' parameter names), NotFound for an unknown group."""
    with installation.db.transaction() as session:
        group = user_service.change_group_defaults(session, name, defaults)
        return _group_view(session, group, user_service.list_members(session, group.name))


def group_view(installation: Installation, name: str) -> GroupView:
    """One group with its members and defaults; NotFound when there is none."""
    with installation.db.read() as session:
        group = user_service.get_group(session, name)
        return _group_view(session, group, user_service.list_members(session, group.name))


def change_membership(
    installation: Installation, group: str, user: str, *, add: bool, actor: str
) -> str:
    """Add `user` (name or alias) to `group`, or take them out, as `printsrv group member
    add|remove` does (`people.users.add_member`, which gives a new member's account the
    group's defaults, and `remove_member`). The user's name. NotFound (group, user, or not
    a member to remove), Conflict (a member already)."""
    with installation.db.transaction() as session:
        if add:
            user_service.add_member(session, group, user)
        else:
            user_service.remove_member(session, group, user)
        name = user_service.get_user(session, user).user_name
    log.info("%s %s group %s by %s", name, "added to" if add else "removed from", group, actor)
    return name


# --- SHARED accounts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountLine:
    """A SHARED account as the console lists it."""

    name: str
    parent: str | None
    balance: Decimal
    disabled: bool
    created_at: datetime


def list_shared_accounts(installation: Installation) -> list[AccountLine]:
    """Every SHARED account, sorted by name."""
    with installation.db.read() as session:
        accounts = accounting.list_accounts(session, AccountType.SHARED.value)
        return [
            AccountLine(
                account.name,
                account.parent.name if account.parent is not None else None,
                account.balance,
                account.disabled,
                account.created_at,
            )
            for account in accounts
        ]


def add_shared_account(installation: Installation, name: str) -> str:
    """Create a SHARED account with a zero balance; its name. InvalidInput for a bad name,
    Conflict when it exists."""
    with installation.db.transaction() as session:
        return accounting.add_shared_account(session, name.strip()).name

"""Group defaults: the initial credit and credit limit a group gives its members' new accounts.

A group may set an initial credit (written as an INITIAL ledger row) and a credit-limit
policy (NONE, DEFAULT, or INDIVIDUAL with an amount). They apply to a member's USER
account while it is still *new*: as it was created, with no ledger row and credit-limit
policy NONE. Users get their account when they are created, before they can be in any
group, so the defaults are applied when a user joins a group (`users.add_member`, the
LDAP sync) and when an account is first made for a user who predates accounting.

When several of the user's groups set defaults, one group's defaults apply, all of them:
the group with the highest initial credit (a group with none counts as zero), and among
equals the first by name. The choice is made among the groups the user is in when the
defaults are applied: an LDAP sync applies them after it has set every group's members,
so it sees them all; a user added to groups one at a time (`printsrv group member add`)
gets the defaults of the first group that sets any. Once the account has a ledger row
(the initial credit, a print, an adjustment) or a credit-limit policy other than NONE,
it is no longer new and later memberships leave it alone, so an administrator's setting
is never overwritten.

Functions take the session first and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

import financial
from financial import Account, AccountTrx, Actor, CreditLimitPolicy, TrxType
from printsrv.errors import InvalidInput
from printsrv.people.models import User, UserGroup, UserGroupMember

__all__ = [
    "GROUP_DEFAULTS_ACTOR",
    "GroupDefaults",
    "apply_group_defaults",
    "check_defaults",
    "open_user_account",
    "set_group_defaults",
]

GROUP_DEFAULTS_ACTOR = Actor("system", "group-defaults")
"""The actor of the INITIAL rows written for group defaults."""


@dataclass(frozen=True)
class GroupDefaults:
    """Changes to a group's defaults; a field left None is kept as it is.

    Attributes:
        initial_credit: credit for a member's new account (zero or positive).
        credit_limit_policy: NONE, DEFAULT or INDIVIDUAL for a member's new account.
        credit_limit: the INDIVIDUAL limit (zero or positive); only with INDIVIDUAL.
    """

    initial_credit: Decimal | None = None
    credit_limit_policy: str | None = None
    credit_limit: Decimal | None = None


# Group defaults are set through JSON-RPC's setUserGroupProperties alone, so a refusal names
# the parameter of that call it is about (the client reads `reason`).
_INITIAL_CREDIT = "userGroup.accounting.balance"
_POLICY = "userGroup.accounting.creditLimit"
_LIMIT = "userGroup.accounting.creditLimitAmount"


def _refused(param: str, what: str) -> InvalidInput:
    return InvalidInput(f"Parameter {param!r} {what}", reason=param)


def check_defaults(defaults: GroupDefaults) -> GroupDefaults:
    """Return `defaults` if they may be stored; InvalidInput naming the field otherwise.

    The initial credit is zero or more (it is credit, never a debt); the credit-limit
    policy is NONE, DEFAULT or INDIVIDUAL; an amount goes with INDIVIDUAL, and only with
    it, and is zero or more.
    """
    if defaults.initial_credit is not None and defaults.initial_credit < 0:
        raise _refused(
            _INITIAL_CREDIT, "must not be negative (it is the credit new members start with)"
        )
    policy, limit = defaults.credit_limit_policy, defaults.credit_limit
    if policy is None:
        if limit is not None:
            raise _refused(_POLICY, "must be INDIVIDUAL with an amount")
        return defaults
    if policy not in {p.value for p in CreditLimitPolicy}:
        raise _refused(_POLICY, "must be NONE, DEFAULT or INDIVIDUAL")
    if policy != CreditLimitPolicy.INDIVIDUAL:
        if limit is not None:
            raise _refused(_LIMIT, f"is only used with creditLimit INDIVIDUAL, not {policy}")
    elif limit is None:
        raise _refused(_LIMIT, "must be given with creditLimit INDIVIDUAL")
    elif limit < 0:
        raise _refused(_LIMIT, "must not be negative")
    return defaults


def set_group_defaults(session: Session, group: UserGroup, defaults: GroupDefaults) -> UserGroup:
    """Store `defaults` on `group`; InvalidInput for defaults `check_defaults` refuses.

    Accounts that exist already are not touched: the defaults are for new accounts.
    """
    check_defaults(defaults)
    if defaults.initial_credit is not None:
        group.initial_credit = financial.money(defaults.initial_credit)
    if defaults.credit_limit_policy is not None:
        limit = defaults.credit_limit
        group.credit_limit_policy = CreditLimitPolicy(defaults.credit_limit_policy).value
        group.credit_limit = financial.money(limit) if limit is not None else None
    session.flush()
    return group


def _is_new(session: Session, account: Account) -> bool:
    if account.credit_limit_policy != CreditLimitPolicy.NONE:
        return False
    first_row = session.scalar(
        select(AccountTrx.id).where(AccountTrx.account_id == account.id).limit(1)
    )
    return first_row is None


def _chosen_group(session: Session, user: User) -> UserGroup | None:
    """The group whose defaults apply to `user` (see the module docstring), or None."""
    groups = session.scalars(
        select(UserGroup)
        .join(UserGroupMember, UserGroupMember.group_id == UserGroup.id)
        .where(UserGroupMember.user_id == user.id)
        .where(UserGroup.initial_credit.is_not(None) | UserGroup.credit_limit_policy.is_not(None))
    )
    ranked = sorted(groups, key=lambda g: (-(g.initial_credit or financial.ZERO), g.name))
    return ranked[0] if ranked else None


def apply_group_defaults(session: Session, user: User) -> UserGroup | None:
    """Give `user`'s USER account its groups' defaults if it is still new; return the group.

    Creates the account if the user has none. Returns the group whose defaults were
    applied, or None when the account is not new or no group of the user sets defaults.
    """
    account = financial.get_or_create_user_account(session, user.user_name)
    if not _is_new(session, account):
        return None
    group = _chosen_group(session, user)
    if group is None:
        return None
    if group.credit_limit_policy is not None:
        financial.set_credit_limit(session, account, group.credit_limit_policy, group.credit_limit)
    if group.initial_credit:
        financial.adjust_balance(
            session,
            account=account,
            amount=group.initial_credit,
            comment=f"Initial credit of group {group.name}",
            actor=GROUP_DEFAULTS_ACTOR,
            trx_type=TrxType.INITIAL,
        )
    return group


def open_user_account(session: Session, user_name: str) -> Account:
    """The USER account of `user_name`, made (with its groups' defaults) if it has none."""
    stored = financial.accounts.normalise_name(financial.AccountType.USER, user_name)
    existing = session.scalar(
        select(Account).where(
            Account.account_type == financial.AccountType.USER, Account.name == stored
        )
    )
    if existing is not None:
        return existing
    user = session.scalar(select(User).where(User.user_name == stored))
    if user is not None:
        apply_group_defaults(session, user)
    return financial.get_or_create_user_account(session, stored)

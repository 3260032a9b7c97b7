"""financial.accounts: creating, finding and configuring accounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

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
from financial.errors import AccountExists, AccountNotFound, InvalidAccount, InvalidAmount
from financial.ledger import adjust_balance

ADMIN = Actor("admin", "admin")


def test_new_account_has_zero_balance_and_no_credit(session: Session) -> None:
    account = create_account(session, account_type="GROUP", name="Staff")
    assert account.id is not None
    assert account.balance == 0
    assert account.credit_limit_policy == "NONE"
    assert account.credit_limit is None
    assert account.disabled is False
    assert account.created_at.tzinfo is not None


def test_user_account_names_are_lower_cased(session: Session) -> None:
    account = create_account(session, account_type="USER", name=" Alice ")
    assert account.name == "alice"
    assert get_account(session, "USER", "ALICE") is account


def test_group_and_shared_names_keep_their_case(session: Session) -> None:
    account = create_account(session, account_type="SHARED", name="Physics")
    assert account.name == "Physics"
    with pytest.raises(AccountNotFound):
        get_account(session, "SHARED", "physics")


def test_same_name_may_exist_once_per_type(session: Session) -> None:
    create_account(session, account_type="USER", name="x")
    create_account(session, account_type="GROUP", name="x")
    with pytest.raises(AccountExists, match="A USER account named 'x' already exists"):
        create_account(session, account_type="USER", name="X")


def test_creating_a_duplicate_leaves_the_session_usable(session: Session) -> None:
    create_account(session, account_type="USER", name="x")
    with pytest.raises(AccountExists):
        create_account(session, account_type="USER", name="x")
    assert [a.name for a in list_accounts(session)] == ["x"]


def test_unknown_account_type_is_refused(session: Session) -> None:
    with pytest.raises(InvalidAccount, match="Account type 'PERSON'"):
        create_account(session, account_type="PERSON", name="x")


@pytest.mark.parametrize("name", ["", "   ", "x" * 256])
def test_empty_or_overlong_names_are_refused(session: Session, name: str) -> None:
    with pytest.raises(InvalidAccount):
        create_account(session, account_type="SHARED", name=name)


def test_shared_account_can_sit_under_a_top_level_shared_parent(session: Session) -> None:
    department = create_account(session, account_type="SHARED", name="Physics")
    project = create_account(session, account_type="SHARED", name="Lasers", parent=department)
    assert project.parent_id == department.id
    with pytest.raises(InvalidAccount, match="not a top-level SHARED account"):
        create_account(session, account_type="SHARED", name="Deeper", parent=project)


def test_only_shared_accounts_have_parents(session: Session) -> None:
    department = create_account(session, account_type="SHARED", name="Physics")
    with pytest.raises(InvalidAccount, match="cannot have a parent"):
        create_account(session, account_type="USER", name="bob", parent=department)


def test_get_account_names_the_missing_account(session: Session) -> None:
    with pytest.raises(AccountNotFound, match="No GROUP account named 'staff'"):
        get_account(session, "GROUP", "staff")


def test_get_account_for_update_returns_the_fresh_row(session: Session) -> None:
    created = create_account(session, account_type="USER", name="alice")
    assert get_account(session, "USER", "alice", for_update=True) is created


def test_get_or_create_user_account_creates_once(session: Session) -> None:
    first = get_or_create_user_account(session, "Rijk")
    again = get_or_create_user_account(session, "rijk")
    assert first is again
    assert [a.name for a in list_accounts(session, account_type="USER")] == ["rijk"]


def test_list_accounts_filters_by_type_and_sorts(session: Session) -> None:
    for kind, name in [("USER", "b"), ("GROUP", "g"), ("USER", "a"), ("SHARED", "s")]:
        create_account(session, account_type=kind, name=name)
    assert [(a.account_type, a.name) for a in list_accounts(session)] == [
        ("GROUP", "g"),
        ("SHARED", "s"),
        ("USER", "a"),
        ("USER", "b"),
    ]
    assert [a.name for a in list_accounts(session, account_type="USER")] == ["a", "b"]


def test_individual_credit_limit_needs_a_non_negative_amount(session: Session) -> None:
    account = create_account(session, account_type="USER", name="alice")
    set_credit_limit(session, account, "INDIVIDUAL", "5.00")
    assert (account.credit_limit_policy, account.credit_limit) == ("INDIVIDUAL", Decimal(5))
    with pytest.raises(InvalidAccount, match="needs an amount"):
        set_credit_limit(session, account, "INDIVIDUAL")
    with pytest.raises(InvalidAmount, match="negative"):
        set_credit_limit(session, account, "INDIVIDUAL", "-1")


def test_default_and_none_policies_clear_the_individual_limit(session: Session) -> None:
    account = create_account(session, account_type="USER", name="alice")
    set_credit_limit(session, account, "INDIVIDUAL", "5")
    set_credit_limit(session, account, "DEFAULT")
    assert (account.credit_limit_policy, account.credit_limit) == ("DEFAULT", None)
    with pytest.raises(InvalidAccount, match="takes no amount"):
        set_credit_limit(session, account, "NONE", "1")
    with pytest.raises(InvalidAccount, match="'SOME'"):
        set_credit_limit(session, account, "SOME")


def test_disable_and_enable(session: Session) -> None:
    account = create_account(session, account_type="USER", name="alice")
    assert disable_account(session, account).disabled is True
    assert enable_account(session, account).disabled is False


def test_latest_transactions_are_newest_first(session: Session) -> None:
    account = create_account(session, account_type="USER", name="alice")
    for amount in ("1", "2", "3"):
        adjust_balance(session, account=account, amount=amount, comment=amount, actor=ADMIN)
    rows = latest_transactions(session, account, 2)
    assert [row.comment for row in rows] == ["3", "2"]


@pytest.mark.parametrize(("kind", "name"), [("robot", "x"), ("admin", "")])
def test_actor_refuses_unknown_kinds_and_empty_names(kind: str, name: str) -> None:
    with pytest.raises(ValueError, match="Actor"):
        Actor(kind, name)

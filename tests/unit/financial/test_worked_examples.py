"""Worked examples: bookkeeping stories told as tests.

Each step is one service call followed by the balances it should leave behind, the way
an administrator or a user of a school's print server would see them.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from financial.accounts import (
    Actor,
    create_account,
    get_or_create_user_account,
    latest_transactions,
    set_credit_limit,
)
from financial.checks import verify
from financial.errors import InsufficientCredit, TransferRefused
from financial.ledger import (
    TransferPolicy,
    adjust_balance,
    charge,
    reverse,
    set_balance,
    transfer,
)
from financial.money import to_wire
from financial.schema import Account

ADMIN = Actor("admin", "finance")
CUPS = Actor("system", "printing")
NO_DEFAULT_CREDIT = Decimal(0)
GIFTS = TransferPolicy(enabled=True, minimum=Decimal("0.50"), maximum=Decimal(20))


def balances(*accounts: Account) -> list[str]:
    return [to_wire(account.balance) for account in accounts]


def test_top_up_print_and_refund_a_cancelled_job(session: Session) -> None:
    # A new student gets an account with nothing on it.
    rijk = get_or_create_user_account(session, "Rijk")
    assert balances(rijk) == ["0.000000"]

    # The finance office tops it up with 9.26 (REST: POST .../balance?adjust=true).
    adjust_balance(
        session,
        account=rijk,
        amount="9.26",
        comment="cash at the desk",
        actor=ADMIN,
        trx_type="DEPOSIT",
    )
    assert balances(rijk) == ["9.260000"]

    # Two print jobs are charged.
    charge(
        session,
        account=rijk,
        amount="1.20",
        comment="essay.pdf",
        actor=CUPS,
        default_credit_limit=NO_DEFAULT_CREDIT,
        document_id=1,
    )
    poster = charge(
        session,
        account=rijk,
        amount="4.00",
        comment="poster.pdf",
        actor=CUPS,
        default_credit_limit=NO_DEFAULT_CREDIT,
        document_id=2,
    )
    assert balances(rijk) == ["4.060000"]

    # The poster job is cancelled at the printer: it is refunded, exactly once.
    reverse(session, trx=poster, comment="job cancelled", actor=CUPS)
    assert balances(rijk) == ["8.060000"]

    # A job that costs more than what is left is refused (no credit by default).
    with pytest.raises(InsufficientCredit):
        charge(
            session,
            account=rijk,
            amount="8.06001",
            comment="thesis.pdf",
            actor=CUPS,
            default_credit_limit=NO_DEFAULT_CREDIT,
        )
    assert balances(rijk) == ["8.060000"]

    # The account page shows the latest rows, newest first.
    assert [
        (row.trx_type, to_wire(row.amount)) for row in latest_transactions(session, rijk, 3)
    ] == [
        ("PRINT_OUT", "4.000000"),
        ("PRINT_OUT", "-4.000000"),
        ("PRINT_OUT", "-1.200000"),
    ]
    assert verify(session) == []


def test_students_give_each_other_credit(session: Session) -> None:
    janet = get_or_create_user_account(session, "janet")
    rijk = get_or_create_user_account(session, "rijk")
    adjust_balance(session, account=janet, amount="20", comment="", actor=ADMIN)

    # Janet gives Rijk 15.00 (REST: POST /financial/transfer?name=rijk&amount=15.00).
    transfer(
        session,
        sender=janet,
        recipient=rijk,
        amount="15.00",
        comment="for the poster",
        actor=Actor("user", "janet"),
        policy=GIFTS,
    )
    assert balances(janet, rijk) == ["5.000000", "15.000000"]

    # She cannot give more than she has, even though she may print on credit.
    set_credit_limit(session, janet, "INDIVIDUAL", "10")
    with pytest.raises(TransferRefused) as refused:
        transfer(
            session,
            sender=janet,
            recipient=rijk,
            amount="6",
            comment="",
            actor=Actor("user", "janet"),
            policy=GIFTS,
        )
    assert refused.value.rule == "sender-below-zero"

    # ...but she can print on that credit.
    charge(
        session,
        account=janet,
        amount="12",
        comment="",
        actor=CUPS,
        default_credit_limit=NO_DEFAULT_CREDIT,
    )
    assert balances(janet, rijk) == ["-7.000000", "15.000000"]

    # Gifts below the minimum are refused.
    with pytest.raises(TransferRefused) as refused:
        transfer(
            session,
            sender=rijk,
            recipient=janet,
            amount="0.25",
            comment="",
            actor=Actor("user", "rijk"),
            policy=GIFTS,
        )
    assert refused.value.rule == "minimum"
    assert verify(session) == []


def test_a_group_account_pays_for_its_members(session: Session) -> None:
    staff = create_account(session, account_type="GROUP", name="staff")
    set_credit_limit(session, staff, "DEFAULT")
    adjust_balance(session, account=staff, amount="50", comment="monthly budget", actor=ADMIN)

    # A member prints on the group's account; the configured default credit is 10.
    charge(
        session,
        account=staff,
        amount="55",
        comment="handouts",
        actor=Actor("user", "ann"),
        default_credit_limit=Decimal(10),
    )
    assert balances(staff) == ["-5.000000"]
    with pytest.raises(InsufficientCredit):
        charge(
            session,
            account=staff,
            amount="5.01",
            comment="more handouts",
            actor=Actor("user", "ann"),
            default_credit_limit=Decimal(10),
        )

    # Finance resets the budget (REST: POST .../balance?amount=50, adjust=false).
    assert set_balance(
        session, account=staff, amount="50", comment="new month", actor=ADMIN
    ) == Decimal(50)
    assert balances(staff) == ["50.000000"]
    assert verify(session) == []


def test_a_department_and_its_projects_share_accounts(session: Session) -> None:
    physics = create_account(session, account_type="SHARED", name="Physics")
    lasers = create_account(session, account_type="SHARED", name="Lasers", parent=physics)
    adjust_balance(session, account=physics, amount="100", comment="", actor=ADMIN)
    adjust_balance(session, account=lasers, amount="30", comment="", actor=ADMIN)

    charge(
        session,
        account=lasers,
        amount="12.5",
        comment="paper",
        actor=Actor("user", "eve"),
        default_credit_limit=NO_DEFAULT_CREDIT,
    )
    assert balances(physics, lasers) == ["100.000000", "17.500000"]
    assert lasers.parent_id == physics.id
    assert verify(session) == []

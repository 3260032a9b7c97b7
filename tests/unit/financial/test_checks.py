"""financial.checks: verify() finds every broken ledger invariant."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import bindparam, text, update
from sqlalchemy.orm import Session

from financial.accounts import Actor, create_account
from financial.checks import Problem, verify
from financial.ledger import TransferPolicy, adjust_balance, charge, reverse, transfer
from financial.schema import AccountTrx, MoneyType

ADMIN = Actor("admin", "admin")


def test_a_consistent_ledger_has_no_problems(session: Session) -> None:
    alice = create_account(session, account_type="USER", name="alice")
    bob = create_account(session, account_type="USER", name="bob")
    create_account(session, account_type="GROUP", name="empty")
    adjust_balance(session, account=alice, amount="3", comment="", actor=ADMIN)
    transfer(
        session,
        sender=alice,
        recipient=bob,
        amount="1",
        comment="",
        actor=ADMIN,
        policy=TransferPolicy(enabled=True),
    )
    job = charge(
        session, account=bob, amount="0.5", comment="", actor=ADMIN, default_credit_limit=Decimal(0)
    )
    reverse(session, trx=job, comment="", actor=ADMIN)
    assert verify(session) == []


def test_verify_finds_a_balance_changed_behind_the_ledgers_back(session: Session) -> None:
    alice = create_account(session, account_type="USER", name="alice")
    adjust_balance(session, account=alice, amount="2.9", comment="", actor=ADMIN)
    session.execute(
        text("UPDATE account SET balance = :balance WHERE id = :id").bindparams(
            bindparam("balance", type_=MoneyType())
        ),
        {"balance": Decimal(3), "id": alice.id},
    )
    problems = verify(session)
    assert [problem.code for problem in problems] == ["balance", "last-row"]
    assert problems[0] == Problem(
        "balance",
        "account USER/alice: balance 3.000000 != ledger sum 2.900000",
        account_id=alice.id,
    )
    assert "balance after its latest transaction" in str(problems[1])


def test_verify_finds_a_balance_without_any_ledger_rows(session: Session) -> None:
    staff = create_account(session, account_type="GROUP", name="staff")
    session.execute(
        text("UPDATE account SET balance = :balance WHERE id = :id").bindparams(
            bindparam("balance", type_=MoneyType())
        ),
        {"balance": Decimal("0.5"), "id": staff.id},
    )
    assert [str(problem) for problem in verify(session)] == [
        "account GROUP/staff: balance 0.500000 != ledger sum 0.000000"
    ]


def test_verify_finds_a_transfer_whose_twin_does_not_point_back(session: Session) -> None:
    alice = create_account(session, account_type="USER", name="alice")
    bob = create_account(session, account_type="USER", name="bob")
    adjust_balance(session, account=alice, amount="3", comment="", actor=ADMIN)
    debit, credit = transfer(
        session,
        sender=alice,
        recipient=bob,
        amount="1",
        comment="",
        actor=ADMIN,
        policy=TransferPolicy(enabled=True),
    )
    session.execute(update(AccountTrx).where(AccountTrx.id == credit.id).values(twin_id=None))
    problems = verify(session)
    assert {(problem.code, problem.trx_id) for problem in problems} == {
        ("transfer", debit.id),
        ("transfer", credit.id),
    }
    assert any("has no twin" in problem.message for problem in problems)


def test_verify_finds_a_transfer_whose_legs_do_not_mirror(session: Session) -> None:
    alice = create_account(session, account_type="USER", name="alice")
    bob = create_account(session, account_type="USER", name="bob")
    adjust_balance(session, account=alice, amount="3", comment="", actor=ADMIN)
    _, credit = transfer(
        session,
        sender=alice,
        recipient=bob,
        amount="1",
        comment="",
        actor=ADMIN,
        policy=TransferPolicy(enabled=True),
    )
    session.execute(update(AccountTrx).where(AccountTrx.id == credit.id).values(amount=Decimal(2)))
    codes = {problem.code for problem in verify(session)}
    assert "transfer" in codes
    assert "balance" in codes


def test_verify_finds_a_reversal_that_does_not_negate(session: Session) -> None:
    alice = create_account(session, account_type="USER", name="alice")
    adjust_balance(session, account=alice, amount="3", comment="", actor=ADMIN)
    job = charge(
        session, account=alice, amount="1", comment="", actor=ADMIN, default_credit_limit=Decimal(0)
    )
    refund = reverse(session, trx=job, comment="", actor=ADMIN)
    session.execute(
        update(AccountTrx).where(AccountTrx.id == refund.id).values(amount=Decimal("0.5"))
    )
    reversal_problems = [p for p in verify(session) if p.code == "reversal"]
    assert len(reversal_problems) == 1
    assert reversal_problems[0].trx_id == refund.id
    assert "does not negate transaction" in reversal_problems[0].message

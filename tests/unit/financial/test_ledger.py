"""financial.ledger: every balance change is one ledger row, written with the balance."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from sqlalchemy import Engine, bindparam, event, func, select
from sqlalchemy.orm import Session

from financial.accounts import Actor, create_account, disable_account, set_credit_limit
from financial.checks import verify
from financial.errors import (
    AccountDisabled,
    InsufficientCredit,
    InvalidAmount,
    LedgerMisuse,
    ReversalRefused,
    TransferRefused,
)
from financial.ledger import (
    LedgerEntry,
    TransferPolicy,
    adjust_balance,
    charge,
    credit_limit_of,
    lock_accounts,
    reverse,
    set_balance,
    transfer,
)
from financial.schema import Account, AccountTrx

ADMIN = Actor("admin", "admin")
PRINTING = Actor("system", "printing")
OPEN = TransferPolicy(enabled=True)


def user(session: Session, name: str, balance: str | None = None) -> Account:
    account = create_account(session, account_type="USER", name=name)
    if balance is not None:
        adjust_balance(session, account=account, amount=balance, comment="start", actor=ADMIN)
    return account


def rows(session: Session, account: Account) -> list[LedgerEntry]:
    """The account's ledger as stored, oldest first (entries compare by value)."""
    query = select(AccountTrx).where(AccountTrx.account_id == account.id).order_by(AccountTrx.id)
    return [LedgerEntry.of(row) for row in session.scalars(query)]


# adjust_balance


def test_adjust_adds_the_amount_and_writes_one_row(session: Session) -> None:
    alice = user(session, "alice")
    row = adjust_balance(session, account=alice, amount="9.26", comment="top-up", actor=ADMIN)
    assert alice.balance == Decimal("9.26")
    assert (row.trx_type, row.amount, row.balance_after) == (
        "ADJUST",
        Decimal("9.26"),
        alice.balance,
    )
    assert (row.actor_kind, row.actor_name, row.comment) == ("admin", "admin", "top-up")
    assert row.created_at.tzinfo is not None
    assert rows(session, alice) == [row]


def test_adjust_may_be_negative_and_ignores_credit_limits(session: Session) -> None:
    alice = user(session, "alice")
    adjust_balance(session, account=alice, amount="-2.50", comment="correction", actor=ADMIN)
    assert alice.balance == Decimal("-2.5")


def test_adjust_rejects_seven_decimal_places(session: Session) -> None:
    alice = user(session, "alice")
    with pytest.raises(InvalidAmount, match=r"'9\.2600001' has more than 6 decimal places"):
        adjust_balance(session, account=alice, amount="9.2600001", comment="", actor=ADMIN)
    assert rows(session, alice) == []


def test_adjust_rejects_zero(session: Session) -> None:
    alice = user(session, "alice")
    with pytest.raises(InvalidAmount, match="zero"):
        adjust_balance(session, account=alice, amount="0.000000", comment="", actor=ADMIN)


def test_adjust_rejects_floats(session: Session) -> None:
    alice = user(session, "alice")
    with pytest.raises(InvalidAmount, match="float"):
        adjust_balance(session, account=alice, amount=0.1, comment="", actor=ADMIN)  # type: ignore[arg-type]


def test_adjust_records_deposits_and_vouchers_by_type(session: Session) -> None:
    alice = user(session, "alice")
    row = adjust_balance(
        session,
        account=alice,
        amount="5",
        comment="card",
        actor=ADMIN,
        trx_type="GATEWAY",
        reference="pay-123",
    )
    assert (row.trx_type, row.reference) == ("GATEWAY", "pay-123")


def test_adjust_cannot_write_transfer_rows(session: Session) -> None:
    alice = user(session, "alice")
    with pytest.raises(ValueError, match="transfer"):
        adjust_balance(
            session, account=alice, amount="5", comment="", actor=ADMIN, trx_type="TRANSFER"
        )


def test_adjust_refuses_a_balance_beyond_twelve_digits(session: Session) -> None:
    alice = user(session, "alice", "999999999999")
    with pytest.raises(InvalidAmount, match="more than 12 integer digits"):
        adjust_balance(session, account=alice, amount="1", comment="", actor=ADMIN)


def test_adjust_works_on_disabled_accounts(session: Session) -> None:
    alice = user(session, "alice")
    disable_account(session, alice)
    adjust_balance(session, account=alice, amount="1", comment="settle", actor=ADMIN)
    assert alice.balance == 1


# set_balance


def test_set_balance_writes_the_difference_as_adjust(session: Session) -> None:
    alice = user(session, "alice", "9.26")
    assert set_balance(session, account=alice, amount="2.50", comment="", actor=ADMIN) == Decimal(
        "2.5"
    )
    last = rows(session, alice)[-1]
    assert (last.trx_type, last.amount, last.balance_after) == (
        "ADJUST",
        Decimal("-6.76"),
        Decimal("2.5"),
    )


def test_set_balance_to_the_current_value_writes_nothing(session: Session) -> None:
    alice = user(session, "alice", "2.5")
    assert set_balance(session, account=alice, amount="2.500000", comment="", actor=ADMIN) == (
        Decimal("2.5")
    )
    assert len(rows(session, alice)) == 1


# charge


def test_charge_takes_the_amount_and_links_the_document(session: Session) -> None:
    alice = user(session, "alice", "5")
    row = charge(
        session,
        account=alice,
        amount="1.25",
        comment="report.pdf",
        actor=PRINTING,
        default_credit_limit=Decimal(0),
        document_id=6272,
    )
    assert (row.trx_type, row.amount, row.document_id) == ("PRINT_OUT", Decimal("-1.25"), 6272)
    assert alice.balance == Decimal("3.75")


def test_charge_without_credit_may_reach_zero_but_not_below(session: Session) -> None:
    alice = user(session, "alice", "1")
    charge(
        session,
        account=alice,
        amount="1",
        comment="",
        actor=PRINTING,
        default_credit_limit=Decimal(10),
    )
    with pytest.raises(InsufficientCredit) as refused:
        charge(
            session,
            account=alice,
            amount="0.000001",
            comment="",
            actor=PRINTING,
            default_credit_limit=Decimal(10),
        )
    assert (refused.value.balance, refused.value.amount, refused.value.limit) == (
        0,
        Decimal("0.000001"),
        0,
    )
    assert alice.balance == 0


def test_charge_with_default_policy_uses_the_callers_default_limit(session: Session) -> None:
    alice = user(session, "alice", "1")
    set_credit_limit(session, alice, "DEFAULT")
    charge(
        session,
        account=alice,
        amount="3",
        comment="",
        actor=PRINTING,
        default_credit_limit=Decimal(2),
    )
    assert alice.balance == -2
    with pytest.raises(InsufficientCredit, match=r"allows at most 0\.000000"):
        charge(
            session,
            account=alice,
            amount="0.01",
            comment="",
            actor=PRINTING,
            default_credit_limit=Decimal(2),
        )


def test_charge_with_individual_policy_uses_the_accounts_limit(session: Session) -> None:
    alice = user(session, "alice")
    set_credit_limit(session, alice, "INDIVIDUAL", "7.5")
    assert credit_limit_of(alice, default_credit_limit=Decimal(100)) == Decimal("7.5")
    charge(
        session,
        account=alice,
        amount="7.5",
        comment="",
        actor=PRINTING,
        default_credit_limit=Decimal(100),
    )
    with pytest.raises(InsufficientCredit):
        charge(
            session,
            account=alice,
            amount="0.01",
            comment="",
            actor=PRINTING,
            default_credit_limit=Decimal(100),
        )


@pytest.mark.parametrize("amount", ["0", "-1"])
def test_charge_must_be_positive(session: Session, amount: str) -> None:
    alice = user(session, "alice", "5")
    with pytest.raises(InvalidAmount, match="must be positive"):
        charge(
            session,
            account=alice,
            amount=amount,
            comment="",
            actor=PRINTING,
            default_credit_limit=Decimal(0),
        )


def test_charging_a_disabled_account_is_refused(session: Session) -> None:
    alice = user(session, "alice", "5")
    disable_account(session, alice)
    with pytest.raises(AccountDisabled, match="'alice' is disabled"):
        charge(
            session,
            account=alice,
            amount="1",
            comment="",
            actor=PRINTING,
            default_credit_limit=Decimal(0),
        )


def test_the_ledger_sees_account_changes_made_after_its_lock_in_the_transaction(
    session: Session,
) -> None:
    alice = user(session, "alice", "5")  # the top-up locked alice in this transaction
    alice.credit_limit_policy, alice.credit_limit = "INDIVIDUAL", Decimal(10)  # not flushed
    row = charge(
        session, account=alice, amount="12", comment="", actor=PRINTING, default_credit_limit=0
    )
    assert row.balance_after == alice.balance == Decimal(-7)
    alice.disabled = True
    with pytest.raises(AccountDisabled):
        charge(
            session, account=alice, amount="1", comment="", actor=PRINTING, default_credit_limit=0
        )


# reverse


def test_cancelled_job_refund_restores_balance(session: Session) -> None:
    alice = user(session, "alice", "5")
    job = charge(
        session,
        account=alice,
        amount="1.25",
        comment="job",
        actor=PRINTING,
        default_credit_limit=Decimal(0),
        document_id=7,
    )
    refund = reverse(session, trx=job, comment="cancelled", actor=PRINTING)
    assert alice.balance == 5
    assert (refund.trx_type, refund.amount, refund.reversal_of_id, refund.document_id) == (
        "PRINT_OUT",
        Decimal("1.25"),
        job.id,
        7,
    )


def test_a_row_is_reversed_only_once(session: Session) -> None:
    alice = user(session, "alice", "5")
    job = charge(
        session,
        account=alice,
        amount="1",
        comment="job",
        actor=PRINTING,
        default_credit_limit=Decimal(0),
    )
    first = reverse(session, trx=job, comment="refund", actor=ADMIN)
    with pytest.raises(ReversalRefused) as refused:
        reverse(session, trx=job, comment="refund again", actor=ADMIN)
    assert (refused.value.rule, refused.value.existing_id) == ("already-reversed", first.id)
    assert alice.balance == 5


def test_a_reversal_is_not_reversed(session: Session) -> None:
    alice = user(session, "alice", "5")
    undo = reverse(session, trx=rows(session, alice)[0], comment="", actor=ADMIN)
    with pytest.raises(ReversalRefused) as refused:
        reverse(session, trx=undo, comment="", actor=ADMIN)
    assert refused.value.rule == "is-reversal"


def test_a_transfer_leg_is_not_reversed(session: Session) -> None:
    alice, bob = user(session, "alice", "5"), user(session, "bob")
    debit, _ = transfer(
        session, sender=alice, recipient=bob, amount="1", comment="", actor=ADMIN, policy=OPEN
    )
    with pytest.raises(ReversalRefused) as refused:
        reverse(session, trx=debit, comment="", actor=ADMIN)
    assert refused.value.rule == "transfer"


# transfer


def test_transfer_writes_two_rows_pointing_at_each_other(session: Session) -> None:
    alice, bob = user(session, "alice", "20"), user(session, "bob")
    debit, credit = transfer(
        session,
        sender=alice,
        recipient=bob,
        amount="15.00",
        comment="thanks",
        actor=Actor("user", "alice"),
        policy=OPEN,
    )
    assert (alice.balance, bob.balance) == (5, 15)
    assert (debit.amount, credit.amount) == (Decimal(-15), Decimal(15))
    assert (debit.twin_id, credit.twin_id) == (credit.id, debit.id)
    assert debit.trx_type == credit.trx_type == "TRANSFER"
    assert (debit.balance_after, credit.balance_after) == (5, 15)
    # What the ledger returns is what it stored, column for column.
    assert (rows(session, alice)[-1], rows(session, bob)) == (debit, [credit])
    assert verify(session) == []


@pytest.mark.parametrize(
    ("policy", "amount", "rule"),
    [
        (TransferPolicy(enabled=False), "1", "transfers-disabled"),
        (OPEN, "0", "amount-not-positive"),
        (OPEN, "-1", "amount-not-positive"),
        (TransferPolicy(enabled=True, minimum=Decimal("0.50")), "0.49", "minimum"),
        (TransferPolicy(enabled=True, maximum=Decimal(10)), "10.01", "maximum"),
        (OPEN, "20.000001", "sender-below-zero"),
    ],
)
def test_transfer_refusals_name_the_rule(
    session: Session, policy: TransferPolicy, amount: str, rule: str
) -> None:
    alice, bob = user(session, "alice", "20"), user(session, "bob")
    with pytest.raises(TransferRefused) as refused:
        transfer(
            session,
            sender=alice,
            recipient=bob,
            amount=amount,
            comment="",
            actor=ADMIN,
            policy=policy,
        )
    assert refused.value.rule == rule
    assert (alice.balance, bob.balance) == (20, 0)
    assert session.scalar(select(func.count()).select_from(AccountTrx)) == 1


def test_transfer_to_oneself_is_refused(session: Session) -> None:
    alice = user(session, "alice", "20")
    with pytest.raises(TransferRefused) as refused:
        transfer(
            session, sender=alice, recipient=alice, amount="1", comment="", actor=ADMIN, policy=OPEN
        )
    assert refused.value.rule == "self"


def test_transfer_to_a_disabled_recipient_is_refused(session: Session) -> None:
    alice, bob = user(session, "alice", "20"), user(session, "bob")
    disable_account(session, bob)
    with pytest.raises(TransferRefused, match="Recipient account 'USER/bob' is disabled"):
        transfer(
            session, sender=alice, recipient=bob, amount="1", comment="", actor=ADMIN, policy=OPEN
        )


def test_transfer_ignores_the_senders_credit_limit(session: Session) -> None:
    alice, bob = user(session, "alice", "1"), user(session, "bob")
    set_credit_limit(session, alice, "INDIVIDUAL", "100")
    with pytest.raises(TransferRefused) as refused:
        transfer(
            session, sender=alice, recipient=bob, amount="2", comment="", actor=ADMIN, policy=OPEN
        )
    assert refused.value.rule == "sender-below-zero"


def test_transfer_may_empty_the_sender_exactly(session: Session) -> None:
    alice, bob = user(session, "alice", "2.5"), user(session, "bob")
    transfer(
        session, sender=alice, recipient=bob, amount="2.5", comment="", actor=ADMIN, policy=OPEN
    )
    assert alice.balance == 0


def test_transfer_policy_refuses_minimum_above_maximum() -> None:
    with pytest.raises(InvalidAmount, match=r"minimum '5\.000000' is above the maximum"):
        TransferPolicy(enabled=True, minimum=Decimal(5), maximum=Decimal(1))


# transactions and atomicity


def test_ledger_refuses_a_session_without_a_transaction(engine: Engine) -> None:
    with Session(engine) as setup, setup.begin():
        setup.add(Account(account_type="USER", name="alice"))
    with Session(engine, autobegin=False) as session:
        with session.begin():
            alice = session.scalars(select(Account)).one()
        with pytest.raises(LedgerMisuse, match="inside a transaction"):
            adjust_balance(session, account=alice, amount="1", comment="", actor=ADMIN)


def test_nothing_is_kept_when_the_callers_transaction_rolls_back(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        alice = user(session, "alice", "10")
        user(session, "bob")
    with Session(engine) as session:
        alice = session.scalars(select(Account).where(Account.name == "alice")).one()
        bob = session.scalars(select(Account).where(Account.name == "bob")).one()
        transfer(
            session, sender=alice, recipient=bob, amount="4", comment="", actor=ADMIN, policy=OPEN
        )
        session.rollback()
    with Session(engine) as session:
        balances = dict(session.execute(select(Account.name, Account.balance)).all())
        assert balances == {"alice": 10, "bob": 0}
        assert session.scalar(select(func.count()).select_from(AccountTrx)) == 1
        assert verify(session) == []


@contextmanager
def _account_selects(engine: Engine) -> Iterator[list[str]]:
    """The SELECTs of the account table sent while the block runs."""
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM account " in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


_BY_NAME = Account.__table__.c.name.in_(bindparam("names", expanding=True))


def test_accounts_locked_by_name_are_not_locked_again_by_that_transaction(
    engine: Engine,
) -> None:
    with Session(engine) as session, session.begin():
        user(session, "ann", "10")
        user(session, "bob")
    with Session(engine) as session, session.begin():
        ann, bob = lock_accounts(session, _BY_NAME, {"names": ["bob", "ann"]})  # id order
        assert (ann.name, bob.name) == ("ann", "bob")
        with _account_selects(engine) as selects:
            transfer(
                session, sender=ann, recipient=bob, amount="2", comment="", actor=ADMIN, policy=OPEN
            )
        assert selects == [], "the rows were locked already"
        with session.begin_nested(), _account_selects(engine) as selects:
            transfer(
                session, sender=ann, recipient=bob, amount="1", comment="", actor=ADMIN, policy=OPEN
            )
        assert len(selects) == 1, "inside a savepoint the locks are taken again"
    with Session(engine) as session, session.begin():
        ann, bob = (
            session.scalar(select(Account).where(Account.name == n)) for n in ("ann", "bob")
        )
        with _account_selects(engine) as selects:
            transfer(
                session, sender=bob, recipient=ann, amount="1", comment="", actor=ADMIN, policy=OPEN
            )
        assert len(selects) == 1, "a new transaction locks again"
        assert (ann.balance, bob.balance) == (Decimal("8"), Decimal("2"))
        assert verify(session) == []

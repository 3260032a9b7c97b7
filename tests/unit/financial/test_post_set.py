"""financial.ledger.post_set: one ledger row per account of a set, written in the database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import case, literal, select
from sqlalchemy.orm import Session

from financial.accounts import Actor, create_account
from financial.checks import verify
from financial.errors import InvalidAmount
from financial.ledger import adjust_balance, lock_account_set, post_set
from financial.money import money
from financial.schema import Account, AccountTrx, MoneyType

SYSTEM = Actor("system", "quota")


def amounts_for(names: dict[str, str]) -> object:
    """A query of (account_id, amount) giving each named USER account its amount."""
    amount = case(
        *(
            (Account.name == name, literal(money(value), MoneyType()))
            for name, value in names.items()
        )
    )
    return select(Account.id.label("account_id"), amount.label("amount")).where(
        Account.account_type == "USER", Account.name.in_(list(names))
    )


@pytest.fixture
def accounts(session: Session) -> dict[str, Account]:
    session.begin()
    made = {name: create_account(session, account_type="USER", name=name) for name in "abc"}
    adjust_balance(session, account=made["a"], amount="2.50", comment="top-up", actor=SYSTEM)
    return made


def test_each_account_gets_one_row_recording_its_new_balance(
    session: Session, accounts: dict[str, Account]
) -> None:
    written = post_set(
        session,
        amounts=amounts_for({"a": "1.25", "b": "3", "c": "-0.5"}),
        trx_type="QUOTA",
        comment="Quota of group staff for day 2025-03-02",
        actor=SYSTEM,
        reference="quota:staff:2025-03-02",
    )
    assert written == 3
    rows = session.scalars(
        select(AccountTrx).where(AccountTrx.trx_type == "QUOTA").order_by(AccountTrx.account_id)
    ).all()
    assert [(r.amount, r.balance_after) for r in rows] == [
        (Decimal("1.25"), Decimal("3.75")),
        (Decimal("3"), Decimal("3")),
        (Decimal("-0.5"), Decimal("-0.5")),
    ]
    assert {(r.comment, r.reference, r.actor_kind, r.actor_name) for r in rows} == {
        ("Quota of group staff for day 2025-03-02", "quota:staff:2025-03-02", "system", "quota")
    }
    assert len({r.created_at for r in rows}) == 1
    # Loaded accounts show the new balance, and the ledger's invariants hold.
    assert accounts["a"].balance == Decimal("3.75")
    assert verify(session) == []


def test_an_empty_set_writes_nothing(session: Session, accounts: dict[str, Account]) -> None:
    empty = amounts_for({"nobody": "1"})
    assert post_set(session, amounts=empty, trx_type="QUOTA", comment="", actor=SYSTEM) == 0


@pytest.mark.parametrize(
    ("names", "error"),
    [
        ({"a": "1", "b": "0"}, InvalidAmount),
        ({"a": "999999999999"}, InvalidAmount),
    ],
)
def test_a_bad_amount_refuses_the_whole_set(
    session: Session, accounts: dict[str, Account], names: dict[str, str], error: type
) -> None:
    with pytest.raises(error):
        post_set(session, amounts=amounts_for(names), trx_type="QUOTA", comment="", actor=SYSTEM)
    assert session.scalars(select(AccountTrx).where(AccountTrx.trx_type == "QUOTA")).all() == []
    assert verify(session) == []


def test_an_account_twice_is_refused(session: Session, accounts: dict[str, Account]) -> None:
    twice = amounts_for({"a": "1"}).union_all(amounts_for({"a": "2"}))
    with pytest.raises(ValueError, match="appears twice"):
        post_set(
            session, amounts=select(twice.subquery()), trx_type="QUOTA", comment="", actor=SYSTEM
        )


def test_transfers_are_not_written_as_a_set(session: Session, accounts: dict[str, Account]) -> None:
    with pytest.raises(ValueError, match="TRANSFER"):
        post_set(
            session, amounts=amounts_for({"a": "1"}), trx_type="TRANSFER", comment="", actor=SYSTEM
        )


def test_a_set_lock_counts_the_accounts_it_locked(
    session: Session, accounts: dict[str, Account]
) -> None:
    ids = select(Account.id).where(Account.name.in_(["a", "c"]))
    assert lock_account_set(session, ids) == 2

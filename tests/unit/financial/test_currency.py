"""financial.currency: exchange rates, rounding, and restating every account in a new currency."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from financial.accounts import Actor, create_account, set_credit_limit
from financial.checks import verify
from financial.currency import change_currency, convert_amount, parse_rate, plan_change
from financial.errors import InvalidAmount
from financial.ledger import adjust_balance
from financial.schema import Account, AccountTrx, TrxType, metadata

ADMIN = Actor("admin", "admin")


def _ledger_sum(session: Session, account: Account) -> Decimal:
    return session.scalar(
        select(func.coalesce(func.sum(AccountTrx.amount), 0)).where(
            AccountTrx.account_id == account.id
        )
    )


# -- parse_rate -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1.08", "0.000001", "12", "0.925925925925", "999999999999"])
def test_parse_rate_accepts_plain_positive_decimals(text: str) -> None:
    assert parse_rate(text) == Decimal(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("0", "zero"),
        ("0.000", "zero"),
        ("-1.08", "not a positive decimal"),
        ("+1.08", "not a positive decimal"),
        ("1e3", "not a positive decimal"),
        ("NaN", "not a positive decimal"),
        ("Infinity", "not a positive decimal"),
        (" 1.08", "not a positive decimal"),
        ("1,08", "not a positive decimal"),
        ("1.", "not a positive decimal"),
        ("1.0000000000001", "more than 12 decimal places"),
        ("1000000000000", "more than 12 integer digits"),
    ],
)
def test_parse_rate_refuses_and_quotes_the_input(text: str, why: str) -> None:
    with pytest.raises(InvalidAmount, match=why) as caught:
        parse_rate(text)
    assert f"'{text}'" in caught.value.message


def test_parse_rate_refuses_non_text() -> None:
    with pytest.raises(InvalidAmount, match="float"):
        parse_rate(1.08)  # type: ignore[arg-type]


# -- convert_amount -------------------------------------------------------------------------------


def test_convert_rounds_half_to_even() -> None:
    # 0.000005 x 0.5 and 0.000015 x 0.5 are both exactly half a micro-unit.
    assert convert_amount(Decimal("0.000005"), Decimal("0.5")) == Decimal("0.000002")
    assert convert_amount(Decimal("0.000015"), Decimal("0.5")) == Decimal("0.000008")
    assert convert_amount(Decimal("-0.000005"), Decimal("0.5")) == Decimal("-0.000002")


def test_convert_rounds_the_exact_product_not_a_rounded_one() -> None:
    # The exact product is 50000000000.100000500000000001, just above half a micro-unit;
    # the default 28-digit context would first round it to exactly half and then, half
    # to even, down to ...100000.
    amount = Decimal("100000000000.000001")
    rate = Decimal("0.500000000001")
    assert convert_amount(amount, rate) == Decimal("50000000000.100001")


def test_convert_refuses_a_result_the_ledger_cannot_store() -> None:
    with pytest.raises(InvalidAmount, match="more than 12 integer digits"):
        convert_amount(Decimal("500000000000"), Decimal("2"))


# -- change_currency ------------------------------------------------------------------------------


def test_change_zeroes_then_restates_each_balance_with_two_adjust_rows(session: Session) -> None:
    alice = create_account(session, account_type="USER", name="alice")
    staff = create_account(session, account_type="GROUP", name="staff")
    empty = create_account(session, account_type="USER", name="empty")
    adjust_balance(session, account=alice, amount="10.00", comment="", actor=ADMIN)
    adjust_balance(session, account=staff, amount="-2.50", comment="", actor=ADMIN)

    change = change_currency(session, source="EUR", target="USD", rate=Decimal("1.08"), actor=ADMIN)

    assert (alice.balance, staff.balance, empty.balance) == (
        Decimal("10.800000"),
        Decimal("-2.700000"),
        Decimal("0.000000"),
    )
    rows = session.scalars(
        select(AccountTrx).where(AccountTrx.account_id == alice.id).order_by(AccountTrx.id)
    ).all()
    assert [(r.trx_type, r.amount, r.balance_after, r.comment) for r in rows[1:]] == [
        (TrxType.ADJUST, Decimal("-10.000000"), Decimal("0.000000"), change.comment),
        (TrxType.ADJUST, Decimal("10.800000"), Decimal("10.800000"), change.comment),
    ]
    assert change.comment == "Base currency EUR -> USD at 1.08"
    assert (
        session.scalar(
            select(func.count()).select_from(AccountTrx).where(AccountTrx.account_id == empty.id)
        )
        == 0
    )
    assert change.summary(done=True) == (
        "2 accounts converted, total 7.500000 EUR -> 8.100000 USD at 1.08"
    )
    assert verify(session) == []


def test_change_scales_individual_credit_limits_only(session: Session) -> None:
    alice = create_account(session, account_type="USER", name="alice")
    bob = create_account(session, account_type="USER", name="bob")
    set_credit_limit(session, alice, "INDIVIDUAL", "5")
    set_credit_limit(session, bob, "DEFAULT")

    change = change_currency(
        session, source="EUR", target="GBP", rate=Decimal("0.853333"), actor=ADMIN
    )

    assert alice.credit_limit == Decimal("4.266665")
    assert (bob.credit_limit_policy, bob.credit_limit) == ("DEFAULT", None)
    assert change.converted == ()
    assert session.scalar(select(func.count()).select_from(AccountTrx)) == 0


def test_a_balance_that_rounds_to_zero_gets_only_the_zeroing_row(session: Session) -> None:
    alice = create_account(session, account_type="USER", name="alice")
    adjust_balance(session, account=alice, amount="0.000001", comment="", actor=ADMIN)

    change_currency(session, source="EUR", target="JPY", rate=Decimal("0.4"), actor=ADMIN)

    assert alice.balance == 0
    assert session.scalar(select(func.count()).select_from(AccountTrx)) == 2
    assert verify(session) == []


def test_dry_run_reports_and_writes_nothing(session: Session) -> None:
    alice = create_account(session, account_type="USER", name="alice")
    set_credit_limit(session, alice, "INDIVIDUAL", "5")
    adjust_balance(session, account=alice, amount="3", comment="", actor=ADMIN)

    change = change_currency(
        session, source="EUR", target="USD", rate=Decimal("2"), actor=ADMIN, dry_run=True
    )

    assert change.summary(done=False) == (
        "1 account would be converted, total 3.000000 EUR -> 6.000000 USD at 2"
    )
    session.expire_all()
    assert (alice.balance, alice.credit_limit) == (Decimal("3.000000"), Decimal("5.000000"))
    assert session.scalar(select(func.count()).select_from(AccountTrx)) == 1


def test_an_overflowing_conversion_is_refused_before_anything_is_written(session: Session) -> None:
    small = create_account(session, account_type="USER", name="small")
    big = create_account(session, account_type="USER", name="big")
    adjust_balance(session, account=small, amount="1", comment="", actor=ADMIN)
    adjust_balance(session, account=big, amount="600000000000", comment="", actor=ADMIN)

    with pytest.raises(InvalidAmount, match="more than 12 integer digits"):
        change_currency(session, source="EUR", target="USD", rate=Decimal("2"), actor=ADMIN)

    assert session.scalar(select(func.count()).select_from(AccountTrx)) == 2
    assert small.balance == Decimal("1.000000")


def test_plan_change_leaves_out_accounts_with_nothing_to_convert(session: Session) -> None:
    create_account(session, account_type="USER", name="idle")
    busy = create_account(session, account_type="USER", name="busy")
    adjust_balance(session, account=busy, amount="1", comment="", actor=ADMIN)
    plan = plan_change(
        session.scalars(select(Account)), source="EUR", target="USD", rate=Decimal("3")
    )
    assert [a.label for a in plan.accounts] == ["USER/busy"]


# -- property: totals and ledger sums -------------------------------------------------------------

balances = st.decimals(
    min_value=Decimal("-999999.999999"),
    max_value=Decimal("999999.999999"),
    places=6,
    allow_nan=False,
    allow_infinity=False,
)
rates = st.decimals(
    min_value=Decimal("0.000001"),
    max_value=Decimal("1000"),
    places=12,
    allow_nan=False,
    allow_infinity=False,
)


@pytest.fixture
def sqlite_only(engine: Engine, backend: str) -> Engine:
    if backend != "sqlite":
        pytest.skip("the property test runs many examples; one back-end is enough")
    return engine


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(amounts=st.lists(balances, min_size=1, max_size=6), rate=rates)
def test_new_total_is_old_total_times_rate_within_rounding_and_ledgers_match(
    sqlite_only: Engine, amounts: list[Decimal], rate: Decimal
) -> None:
    metadata.drop_all(sqlite_only)
    metadata.create_all(sqlite_only)
    with Session(sqlite_only) as session, session.begin():
        accounts = []
        for index, amount in enumerate(amounts):
            account = create_account(session, account_type="USER", name=f"u{index}")
            if amount != 0:
                adjust_balance(session, account=account, amount=amount, comment="", actor=ADMIN)
            accounts.append(account)

        change_currency(session, source="EUR", target="USD", rate=rate, actor=ADMIN)

        old_total = sum(amounts, Decimal(0))
        new_total = sum((a.balance for a in accounts), Decimal(0))
        # Each balance is rounded once, by at most half a micro-unit.
        bound = Decimal("0.0000005") * len(amounts)
        assert abs(new_total - old_total * rate) <= bound
        for account, amount in zip(accounts, amounts, strict=True):
            assert account.balance == convert_amount(amount, rate)
            assert _ledger_sum(session, account) == account.balance
        assert verify(session) == []

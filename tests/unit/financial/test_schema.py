"""financial.schema: money and time columns, constraints, and what Alembic sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from financial.schema import Account, AccountTrx, metadata


def _account(session: Session, name: str = "alice") -> Account:
    account = Account(account_type="USER", name=name)
    session.add(account)
    session.flush()
    return account


def _row(account: Account, amount: str, **extra: object) -> dict[str, object]:
    return {
        "account_id": account.id,
        "trx_type": "ADJUST",
        "amount": Decimal(amount),
        "balance_after": Decimal(amount),
        "actor_kind": "admin",
        "actor_name": "admin",
        **extra,
    }


@pytest.mark.parametrize(
    "amount", ["0.000001", "-0.000001", "999999999999.999999", "-999999999999.999999", "9.26"]
)
def test_money_column_round_trips_exactly(session: Session, amount: str) -> None:
    account = _account(session)
    session.execute(update(Account).values(balance=Decimal(amount)))
    stored = session.scalar(select(Account.balance).where(Account.id == account.id))
    assert stored == Decimal(amount)
    assert isinstance(stored, Decimal)
    assert stored.as_tuple().exponent == -6


def test_balance_plus_amount_is_computed_in_sql(session: Session) -> None:
    account = _account(session)
    new = session.execute(
        update(Account)
        .where(Account.id == account.id)
        .values(balance=Account.balance + Decimal("2.5"))
        .returning(Account.balance)
    ).scalar_one()
    assert new == Decimal("2.500000")
    assert session.scalar(select(Account.balance - Decimal("0.000001"))) == Decimal("2.499999")


def test_sum_of_amounts_is_exact(session: Session) -> None:
    account = _account(session)
    session.execute(insert(AccountTrx), [_row(account, "0.1") for _ in range(10)])
    session.execute(insert(AccountTrx), [_row(account, "-0.000001") for _ in range(3)])
    total = session.scalar(select(func.sum(AccountTrx.amount)))
    assert total == Decimal("0.999997")
    assert isinstance(total, Decimal)


def test_sum_over_no_rows_is_none_and_coalesces_to_zero(session: Session) -> None:
    assert session.scalar(select(func.sum(AccountTrx.amount))) is None
    zero = session.scalar(select(func.coalesce(func.sum(AccountTrx.amount), 0)))
    assert zero == 0


def test_money_column_refuses_floats(session: Session) -> None:
    account = _account(session)
    with pytest.raises(StatementError, match="float"):
        session.execute(update(Account).where(Account.id == account.id).values(balance=0.1))


def test_sqlite_stores_micro_units(session: Session, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite stores integers; PostgreSQL stores NUMERIC(18, 6)")
    account = _account(session)
    session.execute(update(Account).values(balance=Decimal("9.26")))
    raw = session.execute(text("SELECT balance FROM account WHERE id = :id"), {"id": account.id})
    assert raw.scalar_one() == 9_260_000


def test_postgresql_stores_numeric(session: Session, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL only")
    _account(session)
    kind = session.execute(
        text(
            "SELECT data_type, numeric_precision, numeric_scale FROM information_schema.columns"
            " WHERE table_name = 'account_trx' AND column_name = 'amount'"
            " AND table_schema = current_schema()"
        )
    ).one()
    assert tuple(kind) == ("numeric", 18, 6)


def test_times_come_back_aware_in_utc(session: Session) -> None:
    account = _account(session)
    written = datetime(2023, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    session.execute(insert(AccountTrx), [_row(account, "1", created_at=written)])
    stored = session.scalar(select(AccountTrx.created_at))
    assert stored == written
    assert stored.tzinfo == UTC
    assert stored.hour == 23


def test_naive_times_are_refused(session: Session) -> None:
    account = _account(session)
    with pytest.raises(StatementError, match="timezone-aware"):
        session.execute(insert(AccountTrx), [_row(account, "1", created_at=datetime(2023, 1, 1))])


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("amount", Decimal(0), "ck_account_trx_amount_not_zero"),
        ("trx_type", "BRIBE", "ck_account_trx_trx_type"),
        ("actor_kind", "robot", "ck_account_trx_actor_kind"),
    ],
)
def test_database_refuses_bad_ledger_rows(
    session: Session, column: str, value: object, constraint: str
) -> None:
    account = _account(session)
    with pytest.raises(IntegrityError, match=constraint), session.begin_nested():
        session.execute(insert(AccountTrx), [{**_row(account, "1"), column: value}])


def test_database_refuses_a_second_reversal_of_the_same_row(session: Session) -> None:
    account = _account(session)
    original = session.execute(
        insert(AccountTrx).returning(AccountTrx.id), [_row(account, "-1")]
    ).scalar_one()
    session.execute(insert(AccountTrx), [_row(account, "1", reversal_of_id=original)])
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(insert(AccountTrx), [_row(account, "1", reversal_of_id=original)])


def test_database_refuses_duplicate_account_names(session: Session) -> None:
    _account(session, "alice")
    with pytest.raises(IntegrityError), session.begin_nested():
        _account(session, "alice")


def test_database_refuses_a_parent_for_user_accounts(session: Session) -> None:
    parent = Account(account_type="SHARED", name="dept")
    session.add(parent)
    session.flush()
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(Account(account_type="USER", name="bob", parent_id=parent.id))


def test_database_refuses_an_individual_policy_without_a_limit(session: Session) -> None:
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(Account(account_type="USER", name="bob", credit_limit_policy="INDIVIDUAL"))


def test_constraints_are_named_by_the_convention() -> None:
    names = {
        constraint.name for table in metadata.tables.values() for constraint in table.constraints
    }
    assert {
        "pk_account",
        "pk_account_trx",
        "uq_account_account_type",
        "uq_account_trx_reversal_of_id",
        "uq_account_trx_twin_id",
        "ck_account_trx_amount_not_zero",
        "ck_account_account_type",
        "fk_account_trx_account_id_account",
        "fk_account_trx_twin_id_account_trx",
    } <= names
    indexes = {index.name for index in metadata.tables["account_trx"].indexes}
    assert indexes == {
        "ix_account_trx_account_id_created_at",
        "ix_account_trx_created_at",
        "ix_account_trx_trx_type",
        "ix_account_trx_trx_type_created_at",  # the admin dashboard (migration 0020)
    }


def test_alembic_autogenerate_sees_every_table_and_constraint(session: Session) -> None:
    from alembic.autogenerate import produce_migrations, render_python_code
    from alembic.migration import MigrationContext

    metadata.drop_all(session.connection())
    context = MigrationContext.configure(session.connection())
    code = render_python_code(produce_migrations(context, metadata).upgrade_ops)
    for name in (
        "'account'",
        "'account_trx'",
        "ck_account_trx_amount_not_zero",
        "ix_account_trx_account_id_created_at",
        "uq_account_trx_reversal_of_id",
        "financial.schema.MoneyType()",
        "financial.schema.UTCDateTime()",
    ):
        assert name in code

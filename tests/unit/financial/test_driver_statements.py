"""The ledger's hot statements on the driver's cursor (financial._driver) answer exactly as
SQLAlchemy would: the same rows and types, the same bind checks, SQLAlchemy's exceptions
(a lost connection invalidated), and SQLAlchemy's events for a connection someone watches."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, event, exc, select
from sqlalchemy.orm import Session

from financial._driver import fetch_all
from financial.errors import InvalidAmount
from financial.ledger import _locking_ids, _postgresql_write, lock_accounts
from financial.schema import Account, AccountTrx, TrxType, metadata
from tests.unit.financial.conftest import ADMIN
from tests.unit.financial.test_ledger import user

pytestmark = pytest.mark.postgresql


@pytest.fixture
def pg(postgresql_engine: Engine) -> Engine:
    """PostgreSQL (psycopg), where the driver's cursor is used, with fresh tables."""
    metadata.drop_all(postgresql_engine)
    metadata.create_all(postgresql_engine)
    return postgresql_engine


def two_accounts(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session, session.begin():
        ann, bob = user(session, "ann", "10.5"), user(session, "bob")
        return ann.id, bob.id


def write_params(first: int, second: int, amount: Any = Decimal("-1.25")) -> dict[str, Any]:
    fields = {
        "trx_type": "TRANSFER",
        "comment": "lunch",
        "actor_kind": ADMIN.kind,
        "actor_name": ADMIN.name,
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "document_id": None,
        "reference": None,
        "reversal_of_id": None,
    }
    return {f"row_{name}": value for name, value in fields.items()} | {
        "account_0": first,
        "amount_0": amount,
        "account_1": second,
        "amount_1": -amount if isinstance(amount, Decimal) else amount,
    }


def test_the_lock_reads_the_rows_sqlalchemy_reads(pg: Engine) -> None:
    first, second = two_accounts(pg)
    params = {"id_0": first, "id_1": second}
    with Session(pg) as session, session.begin():
        connection = session.connection()
        ours = [tuple(row) for row in fetch_all(connection, _locking_ids(2), params)]
        theirs = [tuple(row) for row in connection.execute(_locking_ids(2), params)]
    assert ours == theirs
    assert [type(value) for value in ours[0]] == [type(value) for value in theirs[0]]
    assert ours[0][3] == Decimal("10.500000") and str(ours[0][3]) == "10.500000"


def test_the_write_moves_balances_and_returns_what_the_database_decided(pg: Engine) -> None:
    first, second = two_accounts(pg)
    with Session(pg) as session, session.begin():
        written = fetch_all(session.connection(), _postgresql_write(2), write_params(first, second))
        stored = session.execute(
            select(AccountTrx.id, AccountTrx.account_id, AccountTrx.balance_after).order_by(
                AccountTrx.id
            )
        ).all()
    by_account = {account: (trx, after, twin) for trx, account, after, twin in written}
    assert by_account[first][1:] == (Decimal("9.25"), by_account[second][0])
    assert by_account[second][1:] == (Decimal("1.25"), by_account[first][0])
    assert (by_account[first][0], first, Decimal("9.25")) in [tuple(row) for row in stored]


def test_amounts_still_go_through_the_money_checks(pg: Engine) -> None:
    first, second = two_accounts(pg)
    with Session(pg) as session, session.begin(), pytest.raises(InvalidAmount, match="float"):
        fetch_all(session.connection(), _postgresql_write(2), write_params(first, second, 1.5))
    with Session(pg) as session:
        assert (
            session.scalar(select(AccountTrx.id).where(AccountTrx.trx_type == TrxType.TRANSFER))
            is None
        )


def test_a_driver_error_is_sqlalchemys_error(pg: Engine) -> None:
    first, second = two_accounts(pg)
    params = {"id_0": first, "id_1": second}
    with Session(pg) as holder, holder.begin():
        fetch_all(holder.connection(), _locking_ids(2), params)  # holds both row locks
        with Session(pg) as session, session.begin():
            session.connection().exec_driver_sql("SET LOCAL lock_timeout = '50ms'")
            with pytest.raises(exc.OperationalError, match="lock timeout"):
                fetch_all(session.connection(), _locking_ids(2), params)


def test_a_lost_connection_is_invalidated_as_sqlalchemy_does(pg: Engine) -> None:
    first, second = two_accounts(pg)
    with Session(pg) as session, session.begin():
        connection = session.connection()
        backend = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with pg.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend)})")
        with pytest.raises(exc.OperationalError) as raised:
            fetch_all(connection, _locking_ids(2), {"id_0": first, "id_1": second})
        assert raised.value.connection_invalidated
        assert connection.invalidated
        session.rollback()
    with Session(pg) as session:  # the pool hands out a working connection again
        assert session.scalar(select(Account.balance).where(Account.id == first)) == Decimal("10.5")


def test_a_watched_connection_sees_the_statements(pg: Engine) -> None:
    first, second = two_accounts(pg)
    seen: list[str] = []

    def record(_c: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    event.listen(pg, "before_cursor_execute", record)
    try:
        with Session(pg) as session, session.begin():
            fetch_all(session.connection(), _locking_ids(2), {"id_0": first, "id_1": second})
    finally:
        event.remove(pg, "before_cursor_execute", record)
    assert len(seen) == 1 and "FOR UPDATE" in seen[0]
    with Session(pg) as session, session.begin():
        fetch_all(session.connection(), _locking_ids(2), {"id_0": first, "id_1": second})
    assert len(seen) == 1, "unwatched, the driver runs it and no event fires"


def test_a_statement_rendered_per_call_runs_through_sqlalchemy(pg: Engine) -> None:
    two_accounts(pg)
    names = Account.__table__.c.name.in_(bindparam("names", expanding=True))
    with Session(pg) as session, session.begin():
        locked = lock_accounts(session, names, {"names": ["bob", "ann"]})
    assert [account.name for account in locked] == ["ann", "bob"]

"""Migration 0012_quotas on a ledger that already has rows pointing at each other.

A fresh test database has an empty ledger; an installation being upgraded has transfers
(twins) and reversals, which the CHECK change must leave intact on both back-ends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

import financial
from financial import Actor
from printsrv.migrations import alembic_config
from printsrv.platform.database import Database

PG_URL = os.environ.get("PRINTSRV_TEST_DATABASE_URL", "")
SYSTEM = Actor("system", "test")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not PG_URL, reason="PRINTSRV_TEST_DATABASE_URL is not set"),
        ),
    ]
)
def bare_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database (no migration applied yet)."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'old.db'}")
        yield db
        db.dispose()
        return
    schema = f"quota_migration_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(PG_URL + ("&" if "?" in PG_URL else "?") + f"options=-csearch_path%3D{schema}")
    yield db
    db.dispose()
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def migrate(db: Database, *targets: str, down: bool = False) -> None:
    cfg = alembic_config()
    with db.transaction() as session:
        cfg.attributes["connection"] = session.connection()
        for target in targets:
            (command.downgrade if down else command.upgrade)(cfg, target)


def insert_quota_row(db: Database) -> None:
    with db.transaction() as session:
        account = financial.get_account(session, "USER", "a")
        financial.adjust_balance(
            session, account=account, amount="1", comment="q", actor=SYSTEM, trx_type="QUOTA"
        )


def test_the_ledger_keeps_its_rows_and_accepts_quota_rows(bare_database: Database) -> None:
    db = bare_database
    migrate(db, "0001", "0002_financial")
    with db.transaction() as session:
        a = financial.create_account(session, account_type="USER", name="a")
        b = financial.create_account(session, account_type="USER", name="b")
        financial.adjust_balance(session, account=a, amount="10", comment="top-up", actor=SYSTEM)
        financial.transfer(
            session, sender=a, recipient=b, amount="3", comment="t", actor=SYSTEM,
            policy=financial.TransferPolicy(enabled=True),
        )  # fmt: skip
        printed = financial.charge(
            session, account=a, amount="1", comment="p", actor=SYSTEM, default_credit_limit=0
        )
        financial.reverse(session, trx=printed, comment="refund", actor=SYSTEM)
    with pytest.raises(IntegrityError):
        insert_quota_row(db)

    migrate(db, "0012_quotas")
    insert_quota_row(db)
    with db.read() as session:
        assert session.scalar(text("SELECT count(*) FROM account_trx")) == 6
        assert financial.verify(session) == []

    # Down again is refused while QUOTA rows exist: they would break the narrower CHECK.
    with pytest.raises(Exception, match=r"type outside|check constraint"):
        migrate(db, "0002_financial", down=True)

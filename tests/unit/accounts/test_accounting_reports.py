"""printsrv/accounts/reports.py: the PostgreSQL CSV report is byte-identical to iter_csv's."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import text, update
from sqlalchemy.orm import Session

import financial
from financial import AccountTrx, TransactionFilter, iter_csv
from financial.reports import end_of_day, start_of_day
from printsrv.accounts.reports import CHUNK_ROWS, _chunks, copy_csv, csv_report
from printsrv.errors import NotFound
from printsrv.operations.installation import Installation

ADMIN = financial.Actor("admin", "ad,min")
CET = timezone(timedelta(hours=1))
INDIA = timezone(timedelta(hours=5, minutes=30))
NEWFOUNDLAND = timezone(-timedelta(hours=3, minutes=30))
ZONES = [UTC, CET, INDIA, NEWFOUNDLAND, timezone(timedelta(hours=14))]

# Every kind of cell the csv module treats specially, and some it does not.
COMMENTS = [
    "",
    "plain",
    "=SUM(A1:A9)",
    "+31 6 1234",
    "-2",
    "@cmd",
    "\tindented",
    "\rreturn",
    "a,b",
    'say "hi"',
    "two\nlines",
    "crlf\r\nend",
    "ünïcödé € 漢字",
    "100% _done_ /slash\\back",
    " leading space",
    "'quoted'",
    "x" * 300,
]
REFERENCES = [None, "", "R-1", "=HYPERLINK(x)", "R,1", '"q"']
SHARED_NAMES = ["Physics", "=Dept", "-minus", 'Lab, "B"', "@home"]


@pytest.fixture
def ledger(installation: Installation) -> Installation:
    """Accounts of every type with odd names, and rows with every odd cell, back-dated."""
    moments = itertools.count()
    with installation.db.transaction() as session:
        accounts = [
            financial.create_account(session, account_type="USER", name=name)
            for name in ("rijk", "=janet", "o'brien")
        ]
        accounts += [
            financial.create_account(session, account_type="SHARED", name=name)
            for name in SHARED_NAMES
        ]
        accounts.append(financial.create_account(session, account_type="GROUP", name="staff"))
        kinds = ["ADJUST", "DEPOSIT", "VOUCHER", "GATEWAY"]
        for index, (comment, reference) in enumerate(itertools.product(COMMENTS, REFERENCES)):
            account = accounts[index % len(accounts)]
            row = financial.adjust_balance(
                session,
                account=account,
                amount=Decimal(index % 7 - 3) + Decimal("0.125") or Decimal("1"),
                comment=comment,
                actor=ADMIN,
                trx_type=kinds[index % len(kinds)],
                reference=reference,
            )
            # Spread over days and odd microseconds, so day bounds and truncation matter.
            moment = datetime(2023, 3, 25, 22, 59, 59, 999_999, UTC) + timedelta(
                hours=7 * next(moments), microseconds=index * 37
            )
            session.execute(
                update(AccountTrx).where(AccountTrx.id == row.id).values(created_at=moment)
            )
        sender, recipient = accounts[0], accounts[1]
        financial.adjust_balance(session, account=sender, amount="50", comment="", actor=ADMIN)
        # All six decimals, a long integer part, both signs.
        for amount in ("-987654321.000001", "987654321.999999", "-0.000001"):
            financial.adjust_balance(
                session, account=accounts[2], amount=amount, comment="cents", actor=ADMIN
            )
        financial.transfer(
            session,
            sender=sender,
            recipient=recipient,
            amount="2.5",
            comment='=gift, "for"\nyou',
            actor=financial.Actor("user", "rijk"),
            policy=financial.TransferPolicy(enabled=True),
        )
    return installation


def _both(session: Session, flt: TransactionFilter, tz: timezone) -> tuple[bytes, bytes]:
    fast = copy_csv(session, flt, tz=tz)
    assert fast is not None
    return b"".join(fast), b"".join(iter_csv(session, flt, tz=tz))


SELECTIONS = [
    TransactionFilter(),
    TransactionFilter(account_type="USER", account_name="=janet"),
    TransactionFilter(account_type="SHARED", account_name='Lab, "B"'),
    TransactionFilter(
        account_type="SHARED", sort_field="TRX_TYPE", ascending=False, account_name="=Dept"
    ),
    TransactionFilter(account_type="GROUP", account_name="staff", ascending=False),
    TransactionFilter(text="DONE"),
    TransactionFilter(text="100%"),
    TransactionFilter(text="_"),
    TransactionFilter(text="/slash\\"),
    TransactionFilter(text="ÜNÏ"),
    TransactionFilter(trx_type="TRANSFER"),
    TransactionFilter(trx_type="VOUCHER", sort_field="TRX_TYPE"),
    TransactionFilter(
        date_from=start_of_day(datetime(2023, 3, 26).date(), CET),
        date_to=end_of_day(datetime(2023, 4, 2).date(), CET),
    ),
    TransactionFilter(date_to=end_of_day(datetime(2023, 3, 27).date(), NEWFOUNDLAND)),
    TransactionFilter(date_from=start_of_day(datetime(2030, 1, 1).date(), UTC)),
]


@pytest.mark.parametrize("flt", SELECTIONS, ids=range(len(SELECTIONS)))
def test_postgresql_output_is_byte_identical_to_iter_csv(
    ledger: Installation, flt: TransactionFilter
) -> None:
    if ledger.db.backend != "postgresql":
        pytest.skip("the fast path is PostgreSQL's")
    with ledger.db.read() as session:
        for tz in ZONES:
            fast, reference = _both(session, flt, tz)
            assert fast == reference, tz
    assert reference.count(b"\r\n") >= 1


def test_the_data_set_exercises_quoting_and_neutralisation(ledger: Installation) -> None:
    with ledger.db.read() as session:
        body = b"".join(
            chunk
            for name in SHARED_NAMES
            for chunk in iter_csv(session, TransactionFilter("SHARED", name), tz=UTC)
        )
    for needle in (b"'=Dept", b'"Lab, ""B"""', b"'-2", b'"crlf\r\nend"', b'"two\nlines"', b"'@"):
        assert needle in body


def test_the_service_uses_the_fast_path_only_on_postgresql(ledger: Installation) -> None:
    with ledger.db.read() as session:
        fast = copy_csv(session, TransactionFilter(), tz=UTC)
        chunks = csv_report(session, TransactionFilter(), tz=UTC)
        assert (fast is not None) == (ledger.db.backend == "postgresql")
        assert b"".join(chunks) == b"".join(iter_csv(session, TransactionFilter(), tz=UTC))
        if fast is not None:
            fast.close()  # type: ignore[attr-defined]


def test_an_unknown_account_is_refused_before_the_first_byte(ledger: Installation) -> None:
    with ledger.db.read() as session, pytest.raises(NotFound, match="No SHARED account"):
        csv_report(session, TransactionFilter("SHARED", "nope"), tz=UTC)


def test_closing_the_stream_early_cancels_the_copy_and_frees_the_connection(
    installation: Installation,
) -> None:
    if installation.db.backend != "postgresql":
        pytest.skip("the fast path is PostgreSQL's")
    with installation.db.transaction() as session:
        account = financial.create_account(session, account_type="USER", name="busy")
        session.execute(
            text(
                "INSERT INTO account_trx (account_id, trx_type, amount, balance_after, comment, "
                "actor_kind, actor_name, created_at) SELECT :id, 'ADJUST', 1, n, 'bulk', "
                "'admin', 'admin', now() FROM generate_series(1, :rows) AS n"
            ),
            {"id": account.id, "rows": CHUNK_ROWS * 20},
        )
    with installation.db.read() as session:
        chunks = copy_csv(session, TransactionFilter(), tz=UTC)
        assert chunks is not None
        header, first = next(chunks), next(chunks)
        assert header.startswith(b"date,") and first.count(b"\r\n") == CHUNK_ROWS
        chunks.close()  # type: ignore[attr-defined]
        # The COPY was cancelled, not drained: the transaction is over (rolled back) and
        # the connection is usable again.
        session.rollback()
        assert session.scalar(text("SELECT count(*) FROM account_trx")) == CHUNK_ROWS * 20


def test_a_long_report_is_cut_into_whole_chunks_with_the_same_bytes(
    installation: Installation,
) -> None:
    """Many libpq reads and chunks, some with a line break inside a cell (quoted, kept
    as LF) and most without (every LF a row end)."""
    if installation.db.backend != "postgresql":
        pytest.skip("the fast path is PostgreSQL's")
    rows = CHUNK_ROWS * 7 + 17
    with installation.db.transaction() as session:
        account = financial.create_account(session, account_type="USER", name="long")
        session.execute(
            text(
                "INSERT INTO account_trx (account_id, trx_type, amount, balance_after, comment, "
                "actor_kind, actor_name, created_at) SELECT :id, 'ADJUST', -0.5, -0.5 * n, "
                "CASE WHEN n % 2500 = 7 THEN 'line ' || n || E'\\nbreak' ELSE 'row, ' || n END, "
                "'admin', 'admin', now() + n * interval '1 second' "
                "FROM generate_series(1, :rows) AS n"
            ),
            {"id": account.id, "rows": rows},
        )
    with installation.db.read() as session:
        fast = copy_csv(session, TransactionFilter(), tz=INDIA)
        assert fast is not None
        chunks = list(fast)
        reference = b"".join(iter_csv(session, TransactionFilter(), tz=INDIA))
    assert b"".join(chunks) == reference
    assert reference.count(b'\nbreak"') == 3  # rows 7, 2507 and 5007
    sizes = [chunk.count(b"\r\n") for chunk in chunks[1:]]
    assert sizes == [CHUNK_ROWS] * 7 + [17]


def test_an_error_the_server_sends_during_the_copy_is_raised(installation: Installation) -> None:
    if installation.db.backend != "postgresql":
        pytest.skip("the fast path is PostgreSQL's")
    # Fails at row 30,000, after some chunks went out: the error ends a COPY under way.
    failing = "COPY (SELECT 1 / (n - 30000) FROM generate_series(1, 50000) AS n) TO STDOUT"
    received = []
    with installation.db.read() as session:
        raw = session.connection().connection.driver_connection
        with pytest.raises(psycopg.errors.DivisionByZero):
            for chunk in _chunks(raw, failing, {}):
                received.append(chunk)
        assert len(received) > 2
        session.rollback()
        assert session.scalar(text("SELECT 2")) == 2


def test_a_stream_closed_right_after_its_last_row_leaves_the_connection_usable(
    installation: Installation,
) -> None:
    """The consumer stops at the last chunk, before asking for the end: the COPY's result
    has been read already, so the same transaction goes on."""
    if installation.db.backend != "postgresql":
        pytest.skip("the fast path is PostgreSQL's")
    with installation.db.transaction() as session:
        account = financial.create_account(session, account_type="USER", name="exact")
        session.execute(
            text(
                "INSERT INTO account_trx (account_id, trx_type, amount, balance_after, comment, "
                "actor_kind, actor_name, created_at) SELECT :id, 'ADJUST', 1, n, 'bulk', "
                "'admin', 'admin', now() FROM generate_series(1, :rows) AS n"
            ),
            {"id": account.id, "rows": CHUNK_ROWS * 2},
        )
    with installation.db.read() as session:
        chunks = copy_csv(session, TransactionFilter(), tz=UTC)
        assert chunks is not None
        taken = [next(chunks) for _ in range(3)]  # the header and both chunks: every row
        chunks.close()  # type: ignore[attr-defined]
        assert sum(chunk.count(b"\r\n") for chunk in taken) == 1 + CHUNK_ROWS * 2
        assert session.scalar(text("SELECT count(*) FROM account_trx")) == CHUNK_ROWS * 2

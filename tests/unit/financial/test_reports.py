"""financial.reports: the transaction report as streamed CSV and as PDF."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import text, update
from sqlalchemy.orm import Session

from financial import reports
from financial.accounts import Actor, create_account
from financial.errors import AccountNotFound, InvalidSelection
from financial.ledger import LedgerEntry, TransferPolicy, adjust_balance, charge, transfer
from financial.reports import (
    CSV_HEADER,
    TransactionFilter,
    end_of_day,
    iter_csv,
    start_of_day,
    write_pdf,
)
from financial.schema import Account, AccountTrx

ADMIN = Actor("admin", "admin")
CET = timezone(timedelta(hours=1))
CEST = timezone(timedelta(hours=2))


def at(session: Session, row: LedgerEntry, moment: datetime) -> None:
    """Back-date a ledger row (tests only: the ledger never updates rows)."""
    session.execute(update(AccountTrx).where(AccountTrx.id == row.id).values(created_at=moment))


def csv_rows(session: Session, flt: TransactionFilter, tz: timezone = UTC) -> list[list[str]]:
    body = b"".join(iter_csv(session, flt, tz=tz)).decode("utf-8")
    return list(csv.reader(io.StringIO(body, newline="")))


@pytest.fixture
def rijk(session: Session) -> Account:
    return create_account(session, account_type="USER", name="rijk")


def test_csv_has_the_header_then_one_row_per_transaction(session: Session, rijk: Account) -> None:
    row = adjust_balance(
        session, account=rijk, amount="9.26", comment="top-up", actor=ADMIN, reference="R-1"
    )
    at(session, row, datetime(2023, 1, 1, 12, 0, tzinfo=UTC))
    charge(
        session,
        account=rijk,
        amount="2.5",
        comment="job",
        actor=Actor("system", "cups"),
        default_credit_limit=Decimal(0),
    )
    header, first, second = csv_rows(session, TransactionFilter(), CET)
    assert tuple(header) == CSV_HEADER
    assert first == [
        "2023-01-01T13:00:00+01:00",
        "USER",
        "rijk",
        "ADJUST",
        "9.260000",
        "9.260000",
        "top-up",
        "admin:admin",
        "R-1",
    ]
    assert second[3:8] == ["PRINT_OUT", "-2.500000", "6.760000", "job", "system:cups"]


def test_csv_uses_crlf_and_quotes_per_rfc_4180(session: Session, rijk: Account) -> None:
    tricky = 'a, "quoted"\nsecond line'
    adjust_balance(session, account=rijk, amount="1", comment=tricky, actor=ADMIN)
    body = b"".join(iter_csv(session, TransactionFilter(), tz=UTC))
    assert body.startswith(b"date,account_type,account_name,transaction_type,amount,")
    assert b'"a, ""quoted""\nsecond line"' in body
    assert body.count(b"\r\n") == 2
    assert csv_rows(session, TransactionFilter())[1][6] == tricky


def test_csv_is_utf8(session: Session, rijk: Account) -> None:
    adjust_balance(session, account=rijk, amount="1", comment="Grüße 日本", actor=ADMIN)
    body = b"".join(iter_csv(session, TransactionFilter(), tz=UTC))
    assert "Grüße 日本".encode() in body


@pytest.mark.parametrize(
    "comment", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
)
def test_csv_neutralises_formulas_in_text_cells(
    session: Session, rijk: Account, comment: str
) -> None:
    adjust_balance(
        session, account=rijk, amount="-2.5", comment=comment, actor=ADMIN, reference=comment
    )
    cells = csv_rows(session, TransactionFilter())[1]
    assert cells[6] == "'" + comment
    assert cells[8] == "'" + comment


def test_csv_keeps_negative_amounts_as_numbers(session: Session, rijk: Account) -> None:
    adjust_balance(session, account=rijk, amount="-2.5", comment="plain", actor=ADMIN)
    cells = csv_rows(session, TransactionFilter())[1]
    assert cells[4:7] == ["-2.500000", "-2.500000", "plain"]


def test_csv_neutralises_formulas_in_account_names(session: Session) -> None:
    shared = create_account(session, account_type="SHARED", name="=cmd|' /C calc'!A0")
    adjust_balance(session, account=shared, amount="1", comment="", actor=ADMIN)
    cells = csv_rows(session, TransactionFilter("SHARED", "=cmd|' /C calc'!A0"))[1]
    assert cells[2] == "'=cmd|' /C calc'!A0"


def test_date_range_is_inclusive_in_the_given_offsets(session: Session, rijk: Account) -> None:
    moments = {
        "before": datetime(2022, 12, 31, 22, 59, 59, 999999, tzinfo=UTC),
        "first-instant": datetime(2023, 1, 1, 0, 0, tzinfo=CET),
        "last-instant": datetime(2023, 6, 1, 23, 59, 59, 999999, tzinfo=CEST),
        "after": datetime(2023, 6, 2, 0, 0, tzinfo=CEST),
    }
    for comment, moment in moments.items():
        row = adjust_balance(session, account=rijk, amount="1", comment=comment, actor=ADMIN)
        at(session, row, moment)
    flt = TransactionFilter(
        date_from=start_of_day(date(2023, 1, 1), CET), date_to=end_of_day(date(2023, 6, 1), CEST)
    )
    assert [cells[6] for cells in csv_rows(session, flt)[1:]] == ["first-instant", "last-instant"]


def test_filters_by_account_text_and_type(session: Session, rijk: Account) -> None:
    other = create_account(session, account_type="USER", name="janet")
    adjust_balance(session, account=rijk, amount="5", comment="Top-up 100% cash", actor=ADMIN)
    adjust_balance(
        session,
        account=rijk,
        amount="5",
        comment="top-up 100 cash",
        actor=ADMIN,
        trx_type="DEPOSIT",
    )
    adjust_balance(session, account=other, amount="5", comment="TOP-UP 100% card", actor=ADMIN)
    transfer(
        session,
        sender=rijk,
        recipient=other,
        amount="1",
        comment="gift",
        actor=ADMIN,
        policy=TransferPolicy(enabled=True),
    )
    everyone = csv_rows(session, TransactionFilter("USER"))
    assert len(everyone) == 1 + 5
    only_rijk = csv_rows(session, TransactionFilter("USER", "RIJK"))
    assert {cells[2] for cells in only_rijk[1:]} == {"rijk"}
    percent = csv_rows(session, TransactionFilter("USER", text="100%"))
    assert [cells[6] for cells in percent[1:]] == ["Top-up 100% cash", "TOP-UP 100% card"]
    deposits = csv_rows(session, TransactionFilter("USER", trx_type="DEPOSIT"))
    assert [cells[3] for cells in deposits[1:]] == ["DEPOSIT"]


def test_sorts_by_type_descending(session: Session, rijk: Account) -> None:
    for kind in ("DEPOSIT", "VOUCHER", "ADJUST"):
        adjust_balance(session, account=rijk, amount="1", comment="", actor=ADMIN, trx_type=kind)
    flt = TransactionFilter(sort_field="TRX_TYPE", ascending=False)
    assert [cells[3] for cells in csv_rows(session, flt)[1:]] == ["VOUCHER", "DEPOSIT", "ADJUST"]


def test_group_report_shows_only_that_group(session: Session) -> None:
    staff = create_account(session, account_type="GROUP", name="staff")
    adjust_balance(session, account=staff, amount="3", comment="", actor=ADMIN)
    rows = csv_rows(session, TransactionFilter("GROUP", "staff"))
    assert [cells[1:3] for cells in rows[1:]] == [["GROUP", "staff"]]


def test_unknown_account_is_reported_before_any_byte(session: Session) -> None:
    with pytest.raises(AccountNotFound, match="No GROUP account named 'nobody'"):
        iter_csv(session, TransactionFilter("GROUP", "nobody"), tz=UTC)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"account_type": "PERSON"}, "Account type 'PERSON'"),
        ({"account_type": "GROUP"}, "needs an account name"),
        ({"account_type": "SHARED", "account_name": " "}, "needs an account name"),
        ({"trx_type": "BRIBE"}, "Transaction type 'BRIBE'"),
        ({"sort_field": "AMOUNT"}, "Sort field 'AMOUNT'"),
        ({"date_from": datetime(2023, 1, 1)}, "must be a datetime with an offset"),
        (
            {
                "date_from": datetime(2023, 6, 1, tzinfo=UTC),
                "date_to": datetime(2023, 1, 1, tzinfo=UTC),
            },
            "date_to 2023-01-01T00:00:00\\+00:00 is before date_from",
        ),
    ],
)
def test_invalid_selections_are_refused(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSelection, match=message):
        TransactionFilter(**arguments)  # type: ignore[arg-type]


def test_selection_in_words() -> None:
    flt = TransactionFilter(
        "USER",
        "Rijk",
        text="job",
        trx_type="PRINT_OUT",
        date_from=start_of_day(date(2023, 1, 1), CET),
    )
    assert flt.describe(CET) == (
        "USER account 'rijk'; transaction type PRINT_OUT; comment containing 'job'; "
        "from 2023-01-01 00:00:00+01:00; sorted by date, ascending"
    )


def test_csv_is_streamed_in_batches(
    session: Session, rijk: Account, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The iterator reads the ledger batch by batch while it is consumed.

    A million-row report is too slow for a unit test (bench/ measures it); this checks
    the mechanism: chunks come one batch at a time, and on PostgreSQL through a
    server-side cursor that is still open after the first batch.
    """
    monkeypatch.setattr(reports, "BATCH_ROWS", 10)
    for number in range(35):
        adjust_balance(session, account=rijk, amount="1", comment=str(number), actor=ADMIN)
    chunks = iter_csv(session, TransactionFilter(), tz=UTC)
    assert next(chunks).count(b"\r\n") == 1
    assert next(chunks).count(b"\r\n") == 10
    if backend == "postgresql":
        assert session.execute(text("SELECT count(*) FROM pg_cursors")).scalar_one() == 1
    rest = list(chunks)
    assert [chunk.count(b"\r\n") for chunk in rest] == [10, 10, 5]


def _pdf_text(session: Session, flt: TransactionFilter) -> tuple[int, list[str]]:
    out = io.BytesIO()
    write_pdf(
        session,
        flt,
        out,
        tz=CET,
        title="Account transactions",
        currency="EUR",
        generated_at=datetime(2023, 6, 2, 8, 30, tzinfo=UTC),
    )
    reader = PdfReader(io.BytesIO(out.getvalue()))
    pages = [" ".join(page.extract_text().split()) for page in reader.pages]
    return len(reader.pages), pages


def test_pdf_has_title_selection_page_numbers_and_repeated_header(
    session: Session, rijk: Account
) -> None:
    for number in range(120):
        adjust_balance(
            session,
            account=rijk,
            amount="1",
            comment=f"row {number}",
            actor=ADMIN,
            trx_type="DEPOSIT" if number % 2 else "VOUCHER",
        )
    count, pages = _pdf_text(session, TransactionFilter("USER", "rijk"))
    assert count >= 3
    assert "Account transactions" in pages[0]
    assert "Selection: USER account 'rijk'; sorted by date, ascending" in pages[0]
    assert "Generated: 2023-06-02 09:30:00+01:00" in pages[0]
    header = "Date Type Account Transaction Amount (EUR) Balance (EUR) Comment Actor Reference"
    for number, page in enumerate(pages, start=1):
        assert re.search(rf"page {number} of {count}\b", page), page[:200]
        assert header in page
    assert "row 0 " in pages[0]
    assert "row 119 " in pages[-1]


def test_pdf_ends_with_totals_per_type(session: Session, rijk: Account) -> None:
    adjust_balance(session, account=rijk, amount="5", comment="", actor=ADMIN, trx_type="DEPOSIT")
    adjust_balance(session, account=rijk, amount="2.5", comment="", actor=ADMIN, trx_type="DEPOSIT")
    charge(
        session,
        account=rijk,
        amount="1.25",
        comment="",
        actor=ADMIN,
        default_credit_limit=Decimal(0),
    )
    _, pages = _pdf_text(session, TransactionFilter("USER", "rijk"))
    totals = pages[-1].split("Totals per transaction type")[1]
    assert "DEPOSIT 2 7.500000" in totals
    assert "PRINT_OUT 1 -1.250000" in totals
    assert "All 3 6.250000" in totals


def test_pdf_of_an_empty_selection_says_so(session: Session, rijk: Account) -> None:
    count, pages = _pdf_text(session, TransactionFilter("USER", "rijk"))
    assert count == 1
    assert "(no transactions)" in pages[0]
    assert "page 1 of 1" in pages[0]

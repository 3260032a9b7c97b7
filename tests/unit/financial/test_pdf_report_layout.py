"""The PDF transaction report as a reader sees it (pypdf's text extraction), and its cost.

The report is drawn row by row and written page by page (financial/_pdf.py); these tests
pin what it shows: every row once and in order, a header row and "page N of M" on every
page, the same number of rows per page as the platypus layout it replaced, long texts
clipped with '...' to their column as reportlab measures them, text outside Latin-1 as
reportlab's standard fonts show it, the totals, and that memory does not grow with rows.
"""

from __future__ import annotations

import io
import os
import re
import tracemalloc
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import BinaryIO

import pytest
from pypdf import PdfReader
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from sqlalchemy import insert
from sqlalchemy.orm import Session

from financial import reports
from financial.accounts import create_account
from financial.reports import TransactionFilter, write_pdf
from financial.schema import Account, AccountTrx

HEADER = "Date Type Account Transaction Amount (EUR) Balance (EUR) Comment Actor Reference"
TABLE_WIDTH = landscape(A4)[0] - 2 * 12 * mm
COMMENT_ROOM = 0.25 * TABLE_WIDTH - 2 * 2  # the comment column's share, less its paddings
ACTOR_ROOM = 0.12 * TABLE_WIDTH - 2 * 2


@pytest.fixture
def jane(session: Session) -> Account:
    return create_account(session, account_type="USER", name="jane")


def ledger(
    session: Session,
    account: Account,
    comments: Sequence[str],
    *,
    actor: str = "cups",
    reference: str | None = None,
) -> None:
    """One ledger row per comment, a second apart: PRINT_OUT -0.50 every fourth row, else
    DEPOSIT 1.25. Inserted in bulk, which only tests may do: the ledger's own path writes
    one row per call and is tested on its own; here only the report reads the rows."""
    start = datetime(2023, 1, 1, tzinfo=UTC)
    balance = Decimal(0)
    rows = []
    for number, comment in enumerate(comments):
        out = number % 4 == 0
        amount = Decimal("-0.50") if out else Decimal("1.25")
        balance += amount
        rows.append(
            {
                "account_id": account.id,
                "trx_type": "PRINT_OUT" if out else "DEPOSIT",
                "amount": amount,
                "balance_after": balance,
                "comment": comment,
                "actor_kind": "system",
                "actor_name": actor,
                "created_at": start + timedelta(seconds=number),
                "reference": reference,
            }
        )
    session.execute(insert(AccountTrx), rows)


def report(session: Session, out: BinaryIO, **options: object) -> None:
    write_pdf(
        session,
        TransactionFilter("USER", "jane"),
        out,
        tz=UTC,
        title="Account transactions",
        currency="EUR",
        generated_at=datetime(2023, 6, 2, 8, 30, tzinfo=UTC),
        **options,  # type: ignore[arg-type]
    )


def pages(session: Session) -> list[str]:
    """The text of each page, whitespace runs made one space."""
    out = io.BytesIO()
    report(session, out)
    reader = PdfReader(io.BytesIO(out.getvalue()), strict=True)
    return [" ".join(page.extract_text().split()) for page in reader.pages]


def test_every_row_is_shown_once_in_order_with_a_header_and_page_number_on_every_page(
    session: Session, jane: Account
) -> None:
    ledger(session, jane, [f"row {number:05d}" for number in range(190)])
    texts = pages(session)
    shown = [int(found) for text in texts for found in re.findall(r"row (\d{5})", text)]
    assert shown == list(range(190))
    for number, text in enumerate(texts, start=1):
        assert HEADER in text
        assert re.search(rf"\bpage {number} of {len(texts)}\b", text), text[-200:]
    # As many rows per page as the platypus layout: fewer on the first, under the title.
    per_page = [len(re.findall(r"row \d{5}", text)) for text in texts]
    assert per_page == [36, 41, 41, 41, 31]
    assert "Account transactions Selection: USER account 'jane'" in texts[0]


def test_the_totals_take_a_page_of_their_own_when_the_last_rows_fill_theirs(
    session: Session, jane: Account
) -> None:
    ledger(session, jane, [f"row {number:05d}" for number in range(36 + 4 * 41)])
    texts = pages(session)
    assert len(texts) == 6
    assert "row 00199" in texts[4]
    assert HEADER not in texts[5] and "row" not in texts[5]
    assert "Totals per transaction type" in texts[5]
    assert "All 200 " in texts[5]
    assert "page 6 of 6" in texts[5]


def test_cells_show_the_time_amounts_balance_actor_and_reference(
    session: Session, jane: Account
) -> None:
    ledger(session, jane, ["first", "second"], reference="R-7")
    text = pages(session)[0]
    assert (
        "2023-01-01 00:00:00+00:00 USER jane PRINT_OUT -0.500000 -0.500000 first system:cups R-7"
        in text
    )
    assert (
        "2023-01-01 00:00:01+00:00 USER jane DEPOSIT 1.250000 0.750000 second system:cups R-7"
        in text
    )


def test_totals_count_and_sum_every_row_across_pages(session: Session, jane: Account) -> None:
    ledger(session, jane, [f"row {number}" for number in range(150)])
    totals = pages(session)[-1].split("Totals per transaction type")[1]
    # 38 of the 150 rows are PRINT_OUT (every fourth), 112 DEPOSIT.
    assert "Transaction type Count Total (EUR)" in totals
    assert "DEPOSIT 112 140.000000" in totals
    assert "PRINT_OUT 38 -19.000000" in totals
    assert "All 150 121.000000" in totals


def test_long_texts_are_clipped_with_dots_to_their_column_as_reportlab_measures_them(
    session: Session, jane: Account
) -> None:
    comment = "A very long comment about chapter seven of the thesis " * 4
    ledger(session, jane, [comment], actor="an-actor-name-far-too-long-for-its-column")
    text = pages(session)[0]
    assert comment.strip() not in text
    shown = re.search(r"(A very long comment.*?)\.\.\.", text)
    assert shown is not None
    kept = shown.group(1)
    assert comment.startswith(kept)
    # The longest prefix that fits with its '...', as before.
    assert stringWidth(kept + "...", "Helvetica", 7) <= COMMENT_ROOM
    assert stringWidth(comment[: len(kept) + 1] + "...", "Helvetica", 7) > COMMENT_ROOM
    actor = re.search(r"(system:an-actor\S*?)\.\.\.", text)
    assert actor is not None
    assert stringWidth(actor.group(1) + "...", "Helvetica", 7) <= ACTOR_ROOM


def test_text_outside_ascii_is_shown_as_reportlabs_standard_fonts_show_it(
    session: Session, jane: Account
) -> None:
    ledger(
        session,
        jane,
        ["Grüße, café: 5 € – Ωμ", "Привет", "brackets (a) and a back\\slash", "two\nlines"],
    )
    # pypdf reads Symbol's Omega as the ohm sign, which NFKC makes the Greek letter again.
    text = unicodedata.normalize("NFKC", pages(session)[0])
    # Latin-1 and Windows-1252 in Helvetica, Greek in Symbol ...
    assert "Grüße, café: 5 € – Ωμ" in text
    # ... and what the standard fonts have no glyph for as black squares, one a character.
    assert "■■■■■■" in text
    assert "brackets (a) and a back\\slash" in text
    # A control character too: a line break keeps its row one line high.
    assert "two■lines" in text


def test_the_account_name_in_the_selection_line_may_be_any_text(session: Session) -> None:
    create_account(session, account_type="USER", name="jöns")
    out = io.BytesIO()
    write_pdf(
        session,
        TransactionFilter("USER", "jöns"),
        out,
        tz=UTC,
        title="Account transactions",
        currency="EUR",
        generated_at=datetime(2023, 6, 2, tzinfo=UTC),
    )
    text = PdfReader(io.BytesIO(out.getvalue())).pages[0].extract_text()
    assert "Selection: USER account 'jöns'" in text


def test_progress_is_told_after_every_batch(
    session: Session, jane: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports, "BATCH_ROWS", 10)
    ledger(session, jane, [str(number) for number in range(35)])
    heard: list[int] = []
    report(session, io.BytesIO(), on_rows=heard.append)
    assert heard == [10, 20, 30, 35]


def test_an_error_from_the_progress_callback_stops_the_report(
    session: Session, jane: Account
) -> None:
    ledger(session, jane, ["one"])

    def cancelled(_done: int) -> None:
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        report(session, io.BytesIO(), on_rows=cancelled)


def test_every_cross_reference_points_at_its_object(session: Session, jane: Account) -> None:
    ledger(session, jane, [f"row {number}" for number in range(100)])
    out = io.BytesIO()
    report(session, out)
    data = out.getvalue()
    start = int(data.rsplit(b"startxref", 1)[1].split()[0])
    lines = data[start:].split(b"\n")
    assert lines[0] == b"xref"
    count = int(lines[1].split()[1])
    for number, line in enumerate(lines[3 : 2 + count], start=1):
        offset = int(line[:10])
        assert data[offset:].startswith(f"{number} 0 obj\n".encode()), number


def peak_bytes(session: Session) -> int:
    """Peak memory Python allocated while writing the report (to a sink that keeps nothing)."""
    with open(os.devnull, "wb") as sink:
        tracemalloc.start()
        try:
            report(session, sink)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_rows(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2,000 rows and 20,000 rows take about the same memory: one page and one batch of
    rows at a time (batches made small so that both reports read many)."""
    monkeypatch.setattr(reports, "BATCH_ROWS", 200)
    few = create_account(session, account_type="USER", name="jane")
    ledger(session, few, [f"print job {number}: report-{number}.pdf" for number in range(2_000)])
    peak_bytes(session)  # the first report loads reportlab's font metrics, once a process
    small = peak_bytes(session)
    session.rollback()
    many = create_account(session, account_type="USER", name="jane")
    ledger(session, many, [f"print job {number}: report-{number}.pdf" for number in range(20_000)])
    large = peak_bytes(session)
    assert large < 1.5 * small, (small, large)

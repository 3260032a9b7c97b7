"""POST /restful/v1/reports/accounttrx over a real socket: CSV (streamed) and PDF."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import text, update
from support import HeldConnections, LiveServer, set_config, wait_until

import financial
from financial import AccountTrx
from financial.reports import CSV_HEADER
from printsrv.accounts import service as accounting
from printsrv.operations.installation import Installation
from printsrv.people import users

ADMIN = ("admin", "s3cret-admin")
CET = timezone(timedelta(hours=1))
CEST = timezone(timedelta(hours=2))
D = Decimal
ADMIN_ACTOR = accounting.admin_actor("admin")


def post_at(
    installation: Installation, name: str, amount: str, comment: str, moment: datetime, **kw: Any
) -> None:
    """Write an ADJUST row (or kw trx_type/reference) and back-date it (tests only)."""
    with installation.db.transaction() as session:
        account = financial.get_account(session, kw.pop("account_type", "USER"), name)
        row = financial.adjust_balance(
            session,
            account=account,
            amount=amount,
            comment=comment,
            actor=ADMIN_ACTOR,
            **kw,
        )
        session.execute(update(AccountTrx).where(AccountTrx.id == row.id).values(created_at=moment))


@pytest.fixture
def server(installation: Installation) -> Iterator[LiveServer]:
    """rijk (alias s123456) and janet with rows around the day bounds of 2023-01-01 (+01) and
    2023-06-01 (+02), and a SHARED account Physics."""
    set_config(
        installation,
        {"api.restful.auth.username": ADMIN[0], "api.restful.auth.password": ADMIN[1]},
    )
    with installation.db.transaction() as session:
        users.add_user(session, "rijk")
        users.add_user(session, "janet")
        users.add_alias(session, "s123456", "rijk")
        accounting.add_shared_account(session, "Physics")
    rows = [
        ("rijk", "1", "before, the start", datetime(2022, 12, 31, 23, 59, 59, tzinfo=CET)),
        ("rijk", "2", "first instant", datetime(2023, 1, 1, 0, 0, 0, tzinfo=CET)),
        ("rijk", "3", '=HYPERLINK("http://x")', datetime(2023, 3, 1, 12, 0, tzinfo=CET)),
        ("rijk", "-1.5", 'two\nlines, "quoted"', datetime(2023, 3, 2, 12, 0, tzinfo=CET)),
        ("rijk", "4", "@SUM(A1)", datetime(2023, 6, 1, 23, 59, 59, 999_000, tzinfo=CEST)),
        ("rijk", "5", "after the end", datetime(2023, 6, 2, 0, 0, 0, tzinfo=CEST)),
        ("janet", "7", "janet's", datetime(2023, 2, 1, 8, 0, tzinfo=UTC)),
    ]
    for name, amount, comment, moment in rows:
        post_at(installation, name, amount, comment, moment)
    post_at(
        installation,
        "Physics",
        "9.26",
        "grant",
        datetime(2023, 4, 1, tzinfo=UTC),
        account_type="SHARED",
        trx_type="DEPOSIT",
        reference="-REF",
    )
    live = LiveServer(installation).start()
    yield live
    live.stop()


def report(server: LiveServer, body: Any, *, auth: Any = ADMIN) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{server.url}/restful/v1/reports/accounttrx",
        content=content,
        auth=auth,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )


def csv_rows(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))


def comments(response: httpx.Response) -> list[str]:
    return [row[6] for row in csv_rows(response)[1:]]


YEAR_2023 = {
    "date_from": {"ccyy": 2023, "mm": 1, "dd": 1, "zzz": "+01"},
    "date_to": {"ccyy": 2023, "mm": 6, "dd": 1, "zzz": "+02"},
}


# --- CSV ------------------------------------------------------------------------------------------


def test_csv_of_one_user_as_in_the_contract_example(server: LiveServer) -> None:
    response = report(server, {"select": {"account_type": "USER", "account_name": "rijk"}})
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="AccountTrxList.csv"'
    assert "content-length" not in response.headers, "the CSV is streamed"
    header, *rows = csv_rows(response)
    assert tuple(header) == CSV_HEADER
    assert len(rows) == 6
    assert rows[1] == [
        "2022-12-31T23:00:00+00:00",
        "USER",
        "rijk",
        "ADJUST",
        "2.000000",
        "3.000000",
        "first instant",
        "admin:admin",
        "",
    ]


def test_csv_is_rfc_4180_with_formula_cells_neutralised(server: LiveServer) -> None:
    response = report(server, {"select": {"account_name": "rijk"}})
    body = response.content
    assert body.startswith(b"date,account_type,account_name,transaction_type,amount,")
    assert body.count(b"\r\n") == 7 and body.endswith(b"\r\n"), "CRLF after every record"
    assert b'"two\nlines, ""quoted"""' in body, "quotes doubled, embedded line end kept"
    assert b'"\'=HYPERLINK(""http://x"")"' in body
    assert "'@SUM(A1)" in comments(response)
    physics = csv_rows(
        report(server, {"select": {"account_type": "SHARED", "account_name": "Physics"}})
    )
    assert physics[1][3:] == ["DEPOSIT", "9.260000", "9.260000", "grant", "admin:admin", "'-REF"]
    assert physics[1][4].startswith("9"), "amounts are numbers, never neutralised"


def test_day_bounds_are_inclusive_in_the_zzz_offset(server: LiveServer) -> None:
    response = report(server, {"select": {"account_name": "S123456", **YEAR_2023}})
    rows = csv_rows(response)[1:]
    assert [row[6] for row in rows] == [
        "first instant",
        '\'=HYPERLINK("http://x")',
        'two\nlines, "quoted"',
        "'@SUM(A1)",
    ]
    # Times are shown in date_from's offset.
    assert rows[0][0] == "2023-01-01T00:00:00+01:00"
    assert rows[-1][0] == "2023-06-01T22:59:59+01:00"


def test_date_to_alone_and_date_from_alone(server: LiveServer) -> None:
    until = {"date_to": {"ccyy": 2022, "mm": 12, "dd": 31, "zzz": "+01:00"}}
    assert comments(report(server, {"select": {"account_name": "rijk", **until}})) == [
        "before, the start"
    ]
    since = {"date_from": {"ccyy": 2023, "mm": 6, "dd": 2, "zzz": "+0200"}}
    rows = csv_rows(report(server, {"select": {"account_name": "rijk", **since}}))
    assert [row[0] for row in rows[1:]] == ["2023-06-02T00:00:00+02:00"]


def test_all_users_text_type_and_sort(server: LiveServer) -> None:
    everyone = report(server, {"select": {"account_type": "USER", "account_name": None}})
    assert len(csv_rows(everyone)) == 1 + 7
    assert comments(report(server, {"select": {"text": "QUOTED"}})) == ['two\nlines, "quoted"']
    newest_first = report(
        server,
        {"select": {"account_name": "rijk", "trx_type": "ADJUST"}, "sort": {"ascending": False}},
    )
    assert comments(newest_first)[0] == "after the end"
    by_type = csv_rows(
        report(server, {"select": {}, "sort": {"field": "TRX_TYPE", "ascending": True}})
    )
    assert {row[3] for row in by_type[1:]} == {"ADJUST"}
    assert comments(report(server, {"select": {"trx_type": "TRANSFER"}})) == []


def test_an_empty_selection_is_just_the_header(server: LiveServer) -> None:
    response = report(server, {"select": {"account_name": "janet", "text": "nothing like it"}})
    assert response.content == b",".join(h.encode() for h in CSV_HEADER) + b"\r\n"


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "must be a JSON object"),
        (b"{", "not valid JSON"),
        (b"[]", "'body' must be a JSON object"),
        (b'{"select": {"account_type": "USER"}, "select": {}}', "appears twice"),
        (b'{"select": {"date_from": {"ccyy": NaN, "mm": 1, "dd": 1}}}', "NaN"),
        (b"\xff\xfe", "not valid JSON"),
        ({"selection": {}}, "'selection' is not known"),
        ({"select": []}, "'select' must be a JSON object"),
        ({"select": {}, "sort": "TRX_DATE"}, "'sort' must be a JSON object"),
        ({"select": {"account_type": ""}}, "'' is not one of USER, GROUP, SHARED"),
        ({"media_type": ""}, "not one of CSV, PDF"),
        ({"select": {"account": "rijk"}}, "'select.account' is not known"),
        ({"select": {}, "sort": {"order": "asc"}}, "'sort.order' is not known"),
        ({"select": {"date_from": {"ccyy": 2023, "mm": 1, "dd": 1, "tz": "+01"}}}, "tz"),
        ({"select": {"account_type": "PERSON"}}, "'PERSON' is not one of USER, GROUP, SHARED"),
        ({"select": {"account_type": "user", "account_name": "rijk"}}, "not one of USER"),
        ({"select": {"trx_type": "REFUND"}}, "'REFUND' is not one of ADJUST"),
        ({"sort": {"field": "AMOUNT"}}, "'AMOUNT' is not one of TRX_DATE, TRX_TYPE"),
        ({"sort": {"ascending": "yes"}}, "'sort.ascending' must be true or false"),
        ({"media_type": "XLSX"}, "not one of CSV, PDF"),
        ({"select": {"account_type": "GROUP"}}, "needs an account name"),
        ({"select": {"account_name": 42}}, "must be a string"),
        ({"select": {"date_from": {"ccyy": 2023, "mm": 2, "dd": 30}}}, "2023-02-30: not a date"),
        ({"select": {"date_from": {"ccyy": 2023.0, "mm": 2, "dd": 1}}}, "whole number"),
        ({"select": {"date_from": {"ccyy": True, "mm": 2, "dd": 1}}}, "whole number"),
        ({"select": {"date_from": {"mm": 2, "dd": 1}}}, "'select.date_from.ccyy' is missing"),
        ({"select": {"date_from": {"ccyy": 2023, "mm": 2, "dd": 1, "zzz": "CET"}}}, "UTC offset"),
        ({"select": {"date_from": {"ccyy": 2023, "mm": 2, "dd": 1, "zzz": "+19"}}}, "-18:00"),
        (
            {
                "select": {
                    "date_from": {"ccyy": 2023, "mm": 6, "dd": 2, "zzz": "+02"},
                    "date_to": {"ccyy": 2023, "mm": 6, "dd": 1, "zzz": "+02"},
                }
            },
            "is before date_from",
        ),
    ],
)
def test_bad_requests_are_answered_400_in_the_contract_envelope(
    server: LiveServer, body: Any, fragment: str
) -> None:
    response = report(server, body)
    assert response.status_code == 400, response.text
    assert response.json()["succes"] is False
    assert fragment in response.json()["error"]


def test_an_unknown_account_is_404_and_the_admin_is_required(server: LiveServer) -> None:
    response = report(server, {"select": {"account_type": "SHARED", "account_name": "Chemistry"}})
    assert response.status_code == 404
    assert response.json() == {"succes": False, "error": "No SHARED account named 'Chemistry'"}
    assert report(server, {"select": {}}, auth=None).status_code == 401
    assert report(server, {"select": {}}, auth=("admin", "nope")).status_code == 401


# --- PDF ------------------------------------------------------------------------------------------


def test_pdf_opens_with_page_numbers_selection_and_totals(
    server: LiveServer, installation: Installation
) -> None:
    with installation.db.transaction() as session:
        account = financial.get_account(session, "USER", "janet")
        for n in range(150):  # a few pages
            financial.adjust_balance(
                session, account=account, amount="0.10", comment=f"row {n}", actor=ADMIN_ACTOR
            )
    response = report(server, {"select": {"account_name": "janet"}, "media_type": "PDF"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="AccountTrxList.pdf"'
    assert int(response.headers["content-length"]) == len(response.content)
    reader = PdfReader(io.BytesIO(response.content))
    pages = [" ".join(page.extract_text().split()) for page in reader.pages]
    count = len(pages)
    assert count >= 3
    assert "Account transactions" in pages[0]
    assert "Selection: USER account 'janet'; sorted by date, ascending" in pages[0]
    for number, page in enumerate(pages, start=1):
        assert re.search(rf"page {number} of {count}\b", page), page[:200]
    totals = pages[-1].split("Totals per transaction type")[1]
    assert "ADJUST 151 22.000000" in totals
    assert "Amount (EUR)" in pages[0]


# --- streaming ------------------------------------------------------------------------------------


def _bulk_rows(installation: Installation, name: str, count: int) -> None:
    """`count` ledger rows for one account, written by the database itself (fast)."""
    with installation.db.transaction() as session:
        account = financial.get_account(session, "USER", name)
        one = "1000000" if installation.db.backend == "sqlite" else "1"
        session.execute(
            text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
                "INSERT INTO account_trx (account_id, trx_type, amount, balance_after, comment, "
                f"actor_kind, actor_name, created_at) SELECT :id, 'ADJUST', {one}, {one}, "
                "'bulk row with some text to make it longer', 'admin', 'admin', :at FROM n"
            ),
            {"count": count, "id": account.id, "at": datetime(2024, 1, 1)},
        )


def test_a_client_that_goes_away_mid_stream_frees_the_database_connection(
    server: LiveServer, installation: Installation
) -> None:
    _bulk_rows(installation, "janet", 120_000)
    # Only the report's own connection is counted (its stream runs on a "printsrv-report"
    # thread): the server's background polls take connections at any moment, so a
    # reading of the whole pool could not tell the report's apart from theirs.
    with HeldConnections(installation.db.engine, "printsrv-report") as held:
        with httpx.stream(
            "POST",
            f"{server.url}/restful/v1/reports/accounttrx",
            json={"select": {"account_name": "janet"}},
            auth=ADMIN,
            timeout=60,
        ) as response:
            assert response.status_code == 200
            assert response.headers["transfer-encoding"] == "chunked"
            first = next(response.iter_bytes())
            assert first.startswith(b"date,")
            assert held() == 1, "the report holds its connection while streaming"
        # The client hung up long before the end; the server notices, closes the generator
        # (cancelling a PostgreSQL COPY) and hands the connection back.
        wait_until(lambda: held() == 0, timeout=20)
    complete = report(server, {"select": {"account_name": "janet"}})
    assert complete.content.count(b"\r\n") == 1 + 1 + 120_000

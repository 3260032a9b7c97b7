"""The account-transactions report's request is checked field by field: a value out of every
range is a 400 naming the field, never a crash (schemathesis found a year that crashed it)."""

from __future__ import annotations

import json

import pytest

from printsrv.accounts.reports import ReportRequest
from printsrv.errors import InvalidInput


def body(**date_from: object) -> bytes:
    return json.dumps(
        {"select": {"date_from": {"ccyy": 2023, "mm": 1, "dd": 1, **date_from}}}
    ).encode()


@pytest.mark.parametrize(
    "date_from",
    [
        {"ccyy": 2477118985055212309340749824},  # more than a C long: OverflowError once
        {"ccyy": -(2**70)},
        {"mm": 2**64},
        {"dd": 0},
    ],
)
def test_a_day_out_of_range_is_refused_naming_it(date_from: dict[str, int]) -> None:
    with pytest.raises(InvalidInput, match=r"select\.date_from.*not a date"):
        ReportRequest.parse_body(body(**date_from))


def test_a_day_in_range_is_taken() -> None:
    request = ReportRequest.parse_body(body(ccyy=2023, mm=6, dd=30, zzz="+02"))

    assert request.select["date_from"].isoformat().startswith("2023-06-30T00:00:00")


def test_a_nul_in_a_text_field_is_refused_naming_it() -> None:
    """PostgreSQL refuses NUL in text: once the CSV report broke off after its first bytes."""
    document = {"select": {"account_name": "fuzzer", "text": "a\x00"}}

    with pytest.raises(InvalidInput, match=r"select\.text.*NUL"):
        ReportRequest.parse_body(json.dumps(document).encode())

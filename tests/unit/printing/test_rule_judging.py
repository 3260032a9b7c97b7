"""printsrv.printing.rules: conditions as written, which rules a print meets, and in what order
they decide (pure functions: no database, no CUPS)."""

from __future__ import annotations

import pytest

from printsrv.errors import InvalidInput
from printsrv.printing.rules import (
    Judgement,
    PrintFacts,
    Rule,
    apply_changes,
    judge,
    parse_condition,
)
from printsrv.printing.types import PrinterInfo


def facts(**changes: object) -> PrintFacts:
    base: dict[str, object] = {
        "printer": "lab",
        "queue": "webservice",
        "groups": frozenset({"staff"}),
        "pages": 10,
        "copies": 1,
        "sheets": 10,
        "color": False,
        "source_type": "application/pdf",
    }
    return PrintFacts(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("written", "parsed"),
    [
        ("pages>5", ("pages", "5")),
        ("copies > 2", ("copies", "2")),
        ("sheets>007", ("sheets", "7")),
        ("color", ("color", "")),
        ("colour", ("color", "")),
        ("type:Image/*", ("type", "image/*")),
        ("type:application/pdf", ("type", "application/pdf")),
    ],
)
def test_conditions_are_read_as_written(written: str, parsed: tuple[str, str]) -> None:
    assert parse_condition(written) == parsed


@pytest.mark.parametrize(
    "written",
    ["", "pages", "pages>", "pages>-1", "pages>1.5", "pages<5", "pages>9999999", "weight>1",
     "type:", "type:pdf", "type:*/*x", "color>1"],
)  # fmt: skip
def test_a_malformed_condition_names_the_if_field(written: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_condition(written)
    assert refused.value.reason == "if"


def test_each_condition_compares_strictly_greater() -> None:
    assert judge([Rule("r", "all", "pages>10", "hold")], facts(pages=10)).matched == ()
    assert judge([Rule("r", "all", "pages>9", "hold")], facts(pages=10)).decision == "hold"
    assert judge([Rule("r", "all", "copies>1", "hold")], facts(copies=2)).decision == "hold"
    assert judge([Rule("r", "all", "sheets>4", "hold")], facts(sheets=5)).decision == "hold"
    assert judge([Rule("r", "all", "color", "hold")], facts(color=False)).matched == ()
    assert judge([Rule("r", "all", "type:image/*", "hold")], facts(source_type="image/png")).matched


def test_scopes_match_only_their_printer_queue_or_group() -> None:
    rules = [
        Rule("p", "printer:hall", "pages>0", "refuse"),
        Rule("q", "queue:lab", "pages>0", "refuse"),
        Rule("g", "group:pupils", "pages>0", "refuse"),
    ]
    assert judge(rules, facts()).matched == ()
    assert judge(rules, facts(printer="hall")).refused_by == rules[0]
    assert judge(rules, facts(queue="lab")).refused_by == rules[1]
    assert judge(rules, facts(groups=frozenset({"pupils"}))).refused_by == rules[2]


def test_refuse_beats_hold_beats_changes_and_changes_combine() -> None:
    grey = Rule("a", "all", "pages>1", "grayscale")
    duplex = Rule("b", "all", "pages>1", "duplex")
    held = Rule("c", "all", "pages>1", "hold")
    refused = Rule("d", "all", "pages>1", "refuse")
    assert judge([grey, duplex, held, refused], facts()).decision == "refuse"
    assert judge([grey, duplex, held], facts()).decision == "hold"
    changes_only = judge([duplex, grey, grey], facts())
    assert changes_only.decision == "print"
    assert changes_only.changes == ("grayscale", "duplex")
    assert Judgement(()).decision == "print"


def printer(sides: tuple[str, ...], modes: tuple[str, ...]) -> PrinterInfo:
    return PrinterInfo(
        name="lab", state="idle", state_message="", state_reasons=(), accepting=True, info="",
        location="", make_and_model="", copies_supported=(1, 99), sides_supported=sides,
        print_color_mode_supported=modes, media_supported=(), sheet_collate_supported=(),
        number_up_supported=(1,), page_ranges_supported=False,
        orientation_requested_supported=(), print_quality_supported=(),
        print_scaling_supported=(), defaults=(),
    )  # fmt: skip


def test_changes_are_made_only_where_the_printer_can() -> None:
    both = printer(("one-sided", "two-sided-long-edge"), ("color", "monochrome"))
    simplex = printer(("one-sided",), ("color",))
    asked = {"copies": "2", "print-color-mode": "color"}
    assert apply_changes(asked, ("grayscale", "duplex"), both) == {
        "copies": "2", "print-color-mode": "monochrome", "sides": "two-sided-long-edge",
    }  # fmt: skip
    assert apply_changes(asked, ("duplex", "grayscale"), simplex) == asked
    assert asked == {"copies": "2", "print-color-mode": "color"}  # not changed in place

"""Option merging and validation against a printer's capabilities (no cupsd needed)."""

from __future__ import annotations

import pytest

from printsrv.errors import InvalidInput
from printsrv.printing.errors import OptionRejected
from printsrv.printing.options import (
    KNOWN_ATTRIBUTES,
    merge_options,
    parse_page_ranges,
    supported_values,
    validate_options,
)
from printsrv.printing.types import PrinterInfo, printer_info_from_attributes

# Shaped like pycups' getPrinterAttributes answer for the Generic-PDF queue, scalars included.
ATTRS: dict[str, object] = {
    "printer-state": 3,
    "printer-state-message": "",
    "printer-state-reasons": ["none"],
    "printer-is-accepting-jobs": True,
    "copies-default": 1,
    "copies-supported": (1, 99),
    "sides-default": "one-sided",
    "sides-supported": ["one-sided", "two-sided-long-edge", "two-sided-short-edge"],
    "print-color-mode-default": "monochrome",
    "print-color-mode-supported": ["monochrome", "color"],
    "media-default": "iso_a4_210x297mm",
    "media-supported": ["iso_a4_210x297mm", "iso_a5_148x210mm", "na_letter_8.5x11in"],
    "number-up-default": 1,
    "number-up-supported": [1, 2, 4],
    "page-ranges-supported": True,
    "orientation-requested-default": None,
    "orientation-requested-supported": [3, 4],
    "print-quality-default": 4,
    "print-quality-supported": 4,
    "print-scaling-supported": ["auto", "fit", "none"],
}


@pytest.fixture
def printer() -> PrinterInfo:
    return printer_info_from_attributes("office", ATTRS)


def rejected(options: dict[str, object], printer: PrinterInfo, **kw: int) -> OptionRejected:
    with pytest.raises(OptionRejected) as caught:
        validate_options(options, printer, **kw)
    return caught.value


# -- merge --------------------------------------------------------------------------------


def test_merge_later_layers_win() -> None:
    merged = merge_options(
        {"sides": "one-sided", "media": "iso_a4_210x297mm", "copies": "1"},
        {"sides": "two-sided-long-edge", "print-color-mode": "monochrome"},
        {"copies": "3", "print-color-mode": "color"},
    )
    assert merged == {
        "sides": "two-sided-long-edge",
        "media": "iso_a4_210x297mm",
        "copies": "3",
        "print-color-mode": "color",
    }


def test_merge_leaves_its_inputs_alone() -> None:
    defaults = {"copies": "1"}
    merge_options(defaults, {}, {"copies": "2"})
    assert defaults == {"copies": "1"}


def test_printer_defaults_feed_the_merge(printer: PrinterInfo) -> None:
    merged = merge_options(printer.default_options(), {}, {"copies": "2"})
    assert validate_options(merged, printer) == {
        "copies": "2",
        "sides": "one-sided",
        "print-color-mode": "monochrome",
        "media": "iso_a4_210x297mm",
        "number-up": "1",
        "print-quality": "4",
    }


# -- accepted -----------------------------------------------------------------------------


def test_valid_options_pass_and_are_normalized(printer: PrinterInfo) -> None:
    options = {
        "copies": "02",
        "sides": "two-sided-short-edge",
        "print-color-mode": "color",
        "media": "iso_a5_148x210mm",
        "sheet-collate": "uncollated",
        "number-up": "4",
        "page-ranges": "1-3,5,7-7",
        "orientation-requested": "4",
        "print-quality": "4",
        "print-scaling": "fit",
        "fit-to-page": "true",
    }
    assert validate_options(options, printer) == {
        **options,
        "copies": "2",
        "page-ranges": "1-3,5,7",
    }


def test_empty_options_are_valid(printer: PrinterInfo) -> None:
    assert validate_options({}, printer) == {}


def test_every_known_attribute_has_supported_values(printer: PrinterInfo) -> None:
    for attribute in KNOWN_ATTRIBUTES:
        assert supported_values(attribute, printer), attribute


# -- refused ------------------------------------------------------------------------------


def test_unknown_attribute_is_refused_with_the_known_ones(printer: PrinterInfo) -> None:
    error = rejected({"bogus-option": "x"}, printer)
    assert error.attribute == "bogus-option"
    assert error.supported == KNOWN_ATTRIBUTES
    assert "unknown attribute" in str(error)
    assert isinstance(error, InvalidInput)


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("sides", "three-sided"),
        ("print-color-mode", "purple"),
        ("media", "iso_z9_1x1mm"),
        ("sheet-collate", "shuffled"),
        ("print-scaling", "stretch"),
        ("fit-to-page", "yes"),
        ("sides", "One-Sided"),
        ("sides", " one-sided"),
    ],
)
def test_keyword_outside_supported_is_refused(
    printer: PrinterInfo, attribute: str, value: str
) -> None:
    error = rejected({attribute: value}, printer)
    assert (error.attribute, error.value) == (attribute, value)
    assert error.supported == supported_values(attribute, printer)
    assert error.printer == "office"
    message = str(error)
    assert f"'{attribute}'" in message
    assert repr(value) in message
    assert error.supported[0] in message


def test_message_lists_the_supported_values(printer: PrinterInfo) -> None:
    assert str(rejected({"sides": "three-sided"}, printer)) == (
        "IPP option 'sides' has value 'three-sided' on printer 'office'; "
        "supported: one-sided, two-sided-long-edge, two-sided-short-edge"
    )


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "", " 2", "+2", "100", "1e3", "1" * 12])
def test_bad_copies_are_refused_with_the_range(printer: PrinterInfo, value: str) -> None:
    error = rejected({"copies": value}, printer)
    assert error.attribute == "copies"
    assert error.supported == ("1-99",)


def test_copies_at_the_maximum_pass(printer: PrinterInfo) -> None:
    assert validate_options({"copies": "99"}, printer) == {"copies": "99"}


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("number-up", "3"),
        ("number-up", "0"),
        ("orientation-requested", "5"),
        ("print-quality", "5"),
    ],
)
def test_enum_outside_supported_is_refused(
    printer: PrinterInfo, attribute: str, value: str
) -> None:
    error = rejected({attribute: value}, printer)
    assert error.attribute == attribute
    assert error.supported == supported_values(attribute, printer)


@pytest.mark.parametrize("value", [2, 2.0, True, None, ["2"]])
def test_non_string_values_are_refused(printer: PrinterInfo, value: object) -> None:
    error = rejected({"copies": value}, printer)
    assert error.attribute == "copies"
    assert "not a string" in str(error)


def test_first_refusal_is_stable(printer: PrinterInfo) -> None:
    assert rejected({"sides": "x", "copies": "0"}, printer).attribute == "copies"


# -- page-ranges --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ranges"),
    [("1", ((1, 1),)), ("1-3,5", ((1, 3), (5, 5))), ("2-4,5-9,12", ((2, 4), (5, 9), (12, 12)))],
)
def test_page_ranges_parse(text: str, ranges: tuple[tuple[int, int], ...]) -> None:
    assert parse_page_ranges(text) == ranges


@pytest.mark.parametrize(
    "text", ["", "0", "3-1", "1-3,2", "1-3,3", "5,1", "1-", "-3", "a", "1;2", "1 - 3", "1,,2"]
)
def test_malformed_page_ranges_are_refused(printer: PrinterInfo, text: str) -> None:
    error = rejected({"page-ranges": text}, printer)
    assert error.attribute == "page-ranges"
    assert "1-3,5" in error.supported[0]


def test_page_ranges_beyond_the_document_are_refused_once_pages_are_known(
    printer: PrinterInfo,
) -> None:
    assert validate_options({"page-ranges": "1-3"}, printer, pages=3) == {"page-ranges": "1-3"}
    error = rejected({"page-ranges": "2-4"}, printer, pages=3)
    assert "within 1-3" in error.supported[0]
    assert "3 pages" in str(error)


def test_page_ranges_on_a_printer_without_them_are_refused() -> None:
    printer = printer_info_from_attributes("plain", {**ATTRS, "page-ranges-supported": False})
    error = rejected({"page-ranges": "1"}, printer)
    assert error.supported == ()

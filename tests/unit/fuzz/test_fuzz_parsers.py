"""Every parser that takes raw bytes keeps its contract for generated and mutated input.

The contract (bench/fuzz_targets.py, one function per parser): a valid result, or the
domain's own error that the adapter renders in its envelope; never another exception. Each
target is driven from its valid seeds with byte mutations, and XML-RPC and JSON-RPC also
with structured envelopes. Every finding of the fuzzing stays here as an explicit example
with its minimal input, beside a plain test that names what it was.
"""

from __future__ import annotations

import xmlrpc.client
from pathlib import Path

import pytest
from fuzz_support import (
    JSON_VALUES,
    NAMED_CROP_BOX,
    NAMED_ROTATION,
    ZERO_CROP_BOX,
    fuzz_settings,
    mutated,
)
from hypothesis import example, given
from hypothesis import strategies as st

from bench.fuzz_targets import (
    TARGETS,
    agent_bodies,
    convert_to_fields,
    document_conversion,
    ipp_options,
    jsonrpc_body,
    multipart_body,
    pdf_intake,
    release_request,
    report_request,
    xmlrpc_body,
)
from printsrv.accounts.reports import ReportRequest, strict_json
from printsrv.documents.convert import ConversionFailed, inspect_pdf
from printsrv.documents.convert_to import Target, page_geometry
from printsrv.errors import InvalidInput
from printsrv.rpc.xmlrpc import METHODS

DEEP_JSON = b"[" * 100_000
# Found by atheris: Decimal() raises InvalidOperation (not ValueError) for this exponent.
HUGE_EXPONENT = b'{"id":1e9955555555555555555555555555555555555555}'
HUGE_YEAR = b'{"select": {"date_from": {"ccyy": 100000000000000000000, "mm": 1, "dd": 1}}}'


# --- the targets, from mutated seeds ------------------------------------------------------


def test_every_target_is_fuzzed_here() -> None:
    fuzzed = {
        "xmlrpc",
        "jsonrpc",
        "multipart",
        "ipp",
        "pdf",
        "convert",
        "report",
        "release",
        "agents",
        "convert_to",
    }
    assert set(TARGETS) == fuzzed


@fuzz_settings(120)
@given(mutated("xmlrpc"))
def test_xmlrpc_bodies_parse_or_fault(data: bytes) -> None:
    xmlrpc_body(data)


@fuzz_settings(120)
@given(mutated("jsonrpc"))
@example(b'{"jsonrpc":"2.0","method":"systemStatus","id":1e400}')
@example(HUGE_EXPONENT)
def test_jsonrpc_bodies_parse_or_give_an_error_object(data: bytes) -> None:
    jsonrpc_body(data)


@fuzz_settings(120)
@given(mutated("multipart"))
def test_multipart_bodies_give_an_upload_or_invalid_input(data: bytes) -> None:
    multipart_body(data)


@fuzz_settings(200)
@given(mutated("ipp") | st.text(max_size=60).map(str.encode))
def test_ipp_option_values_are_checked_or_rejected(data: bytes) -> None:
    ipp_options(data)


@fuzz_settings(100)
@given(mutated("pdf"))
@example(ZERO_CROP_BOX)
@example(NAMED_ROTATION)
@example(NAMED_CROP_BOX)
def test_pdf_intake_counts_pages_or_refuses(data: bytes) -> None:
    pdf_intake(data)


@fuzz_settings(60)
@given(mutated("convert"))
def test_conversion_gives_a_pdf_or_conversion_failed(data: bytes) -> None:
    document_conversion(data)


@fuzz_settings(120)
@given(mutated("report"))
@example(DEEP_JSON)
@example(HUGE_YEAR)
def test_report_selections_parse_or_are_invalid_input(data: bytes) -> None:
    report_request(data)


@fuzz_settings(120)
@given(mutated("release"))
@example(DEEP_JSON)
def test_release_requests_parse_or_are_invalid_input(data: bytes) -> None:
    release_request(data)


@fuzz_settings(120)
@given(mutated("agents"))
@example(b"{" * 50_000)
def test_agent_bodies_parse_or_are_invalid_input(data: bytes) -> None:
    agent_bodies(data)


@fuzz_settings(120)
@given(mutated("convert_to") | st.text(max_size=80).map(str.encode))
def test_convert_to_fields_give_a_target_and_a_safe_name(data: bytes) -> None:
    convert_to_fields(data)


# --- structured envelopes ------------------------------------------------------------------

XMLRPC_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**31), max_value=2**31 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20)
    | st.binary(max_size=10).map(xmlrpc.client.Binary),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet="abcxyz", max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@fuzz_settings(120)
@given(
    method=st.sampled_from(sorted(METHODS)) | st.text(alphabet="abc.-_", min_size=1, max_size=30),
    params=st.lists(XMLRPC_VALUES, max_size=3),
)
def test_xmlrpc_calls_of_any_shape_dispatch_or_fault(method: str, params: list[object]) -> None:
    body = xmlrpc.client.dumps(tuple(params), method, allow_none=True).encode()
    xmlrpc_body(body)


JSONRPC_OBJECTS = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2.0]) | JSON_VALUES,
        "method": st.sampled_from(["systemStatus", "getConfigProperty", "addInternalUser"])
        | JSON_VALUES,
        "params": JSON_VALUES,
        "id": st.integers() | st.text(max_size=8) | st.none() | JSON_VALUES,
    },
)


@fuzz_settings(120)
@given(st.one_of(JSONRPC_OBJECTS, st.lists(JSONRPC_OBJECTS, max_size=4), JSON_VALUES))
def test_jsonrpc_envelopes_of_any_shape_are_answered(document: object) -> None:
    import json

    jsonrpc_body(json.dumps(document).encode())


# --- the findings, one plain test each ---------------------------------------------------------


def test_a_deeply_nested_json_body_is_invalid_input_not_a_recursion_error() -> None:
    """Found by fuzzing /release: the decoder recursed once per '[', and RecursionError was
    a 500 on every door that reads JSON through strict_json (release, agents, reports)."""
    with pytest.raises(InvalidInput, match="nests too deeply"):
        strict_json(DEEP_JSON, "{}")


def test_a_report_year_too_large_for_a_date_is_invalid_input() -> None:
    """Found by fuzzing the report selection: date() raised OverflowError, not ValueError."""
    with pytest.raises(InvalidInput, match=r"select\.date_from"):
        ReportRequest.parse_body(HUGE_YEAR)


@pytest.mark.parametrize(
    ("pdf", "words"),
    [
        (ZERO_CROP_BOX, "shown 0 x 0 points"),  # was ZeroDivisionError
        (NAMED_CROP_BOX, r"no readable size \(ValueError\)"),  # was ValueError
    ],
    ids=["zero crop box", "crop box a name"],
)
def test_a_page_without_a_usable_crop_box_is_a_damaged_document(
    tmp_path: Path, pdf: bytes, words: str
) -> None:
    """Found by fuzzing PDF intake: inspect_pdf checks the media box, so these pass it,
    and convert-to's PNG sizing then failed with a 500."""
    path = tmp_path / "page.pdf"
    path.write_bytes(pdf)
    assert inspect_pdf(path, name="page.pdf", max_pages=5) == 1
    with pytest.raises(ConversionFailed, match=words) as caught:
        page_geometry(path, Target("png"), name="page.pdf")
    assert caught.value.kind == "damaged"


def test_a_rotation_that_is_not_a_number_is_read_as_none(tmp_path: Path) -> None:
    """Found by fuzzing: pypdf's page.rotation raised TypeError for `/Rotate /x`."""
    path = tmp_path / "page.pdf"
    path.write_bytes(NAMED_ROTATION)
    assert page_geometry(path, Target("png", width=100), name="page.pdf") == (200.0, 150)


@pytest.mark.parametrize(
    "body",
    [
        b'{"select": {"date_from": {"ccyy": 1, "mm": 1, "dd": 1, "zzz": "+18"}}}',
        b'{"select": {"date_to": {"ccyy": 9999, "mm": 12, "dd": 31, "zzz": "-01"}}}',
    ],
    ids=["year 1 east of UTC", "year 9999 west of UTC"],
)
def test_a_report_day_outside_the_years_of_utc_is_invalid_input(body: bytes) -> None:
    """Found by fuzzing the report over a socket: the day parsed, and the database driver
    raised OverflowError turning it into UTC after the CSV answer had started."""
    with pytest.raises(InvalidInput, match="outside the years 1-9999 in UTC"):
        ReportRequest.parse_body(body)


def test_a_jsonrpc_id_past_a_floats_range_is_not_echoed_as_infinity() -> None:
    """Found by fuzzing: a fractional id goes back as a float, and 1e400 went back as
    `Infinity`, which is not JSON. It is refused as an id, so the answer's id is null."""
    from printsrv.rpc.jsonrpc import parse_body, request_id, shape_problem

    request = parse_body(b'{"jsonrpc":"2.0","method":"systemStatus","id":1e400}')
    assert shape_problem(request) == 'member "id" must be a string, a number or null'
    assert request_id(request) is None
    assert request_id(parse_body(b'{"id": 1.5}')) == 1.5


@fuzz_settings(100)
@given(
    content_type=st.sampled_from(
        ["multipart/form-data; boundary=", "multipart/form-data;", ""]
    ).flatmap(
        lambda head: st.text(st.characters(max_codepoint=255), max_size=80).map(head.__add__)
    ),
    body=mutated("multipart"),
)
def test_any_upload_content_type_gives_an_upload_or_invalid_input(
    tmp_path_factory: pytest.TempPathFactory, content_type: str, body: bytes
) -> None:
    from bench.fuzz_targets import run_async, upload_request
    from printsrv.errors import PayloadTooLarge
    from printsrv.platform.uploads import receive_upload

    work_dir = tmp_path_factory.mktemp("upload")
    request = upload_request(body, content_type.encode("latin-1"))
    try:
        run_async(receive_upload(request, work_dir=work_dir, max_file_bytes=64 * 1024))
    except (InvalidInput, PayloadTooLarge):
        assert list(work_dir.iterdir()) == []


# "²" is a digit to str.isdigit() and not a number to int(): every `isdigit()` check in
# front of an `int()` let it through to a ValueError, a 500 (found by fuzzing convert-to's
# page field, then looked for everywhere).


def test_convert_to_refuses_a_superscript_page_number() -> None:
    with pytest.raises(InvalidInput, match="page '²' is not a whole number"):
        Target.parse("png", "²")
    with pytest.raises(InvalidInput, match="width"):
        Target.parse("png", "1", "1" * 5000)


def test_a_document_reference_in_superscript_digits_is_not_found() -> None:
    from printsrv.documents.log import document_id_of
    from printsrv.errors import NotFound

    with pytest.raises(NotFound):
        document_id_of("²")


def test_a_print_rule_threshold_in_superscript_digits_is_invalid_input() -> None:
    from printsrv.printing.rules import parse_condition

    with pytest.raises(InvalidInput, match="whole number"):
        parse_condition("pages > ²")


def test_a_release_form_with_superscript_digits_is_invalid_input() -> None:
    from printsrv.printing.release import ReleaseRequest

    with pytest.raises(InvalidInput, match="not a document number"):
        ReleaseRequest.parse({"document": "²", "printer": "p"})
    with pytest.raises(InvalidInput, match="Copies"):
        ReleaseRequest.parse({"document": "1", "printer": "p", "copies": "²"})


def test_a_json_number_with_an_exponent_out_of_range_is_malformed_json() -> None:
    """Found by atheris: parse_float=Decimal raised decimal.InvalidOperation, which neither
    the JSON-RPC adapter (a 500 without the envelope) nor strict_json caught."""
    from printsrv.rpc.jsonrpc import parse_body

    with pytest.raises(ValueError, match="out of range"):
        parse_body(HUGE_EXPONENT)
    with pytest.raises(InvalidInput, match="out of range"):
        strict_json(HUGE_EXPONENT, "{}")

"""Every service error is decided once, in the one error table, for every door.

Like httpx's "all exceptions mapped" test: a new error class without a row of its own fails
here, so its author decides what each adapter's callers see. The adapters' own tests show
they render from the table; these show the table is whole and its answers hold together.
"""

from __future__ import annotations

import pytest
from support import every_service_error_class

from printsrv import errors
from printsrv.error_table import ERROR_TABLE, answer_for, retry_after
from printsrv.people.throttle import LoginThrottled
from printsrv.printing.errors import CupsUnavailable, PrinterNotFound
from printsrv.rest.responses import failure, status_for
from printsrv.rpc.jsonrpc import error_object
from printsrv.web.views import status_for as page_status_for

ERROR_CLASSES = every_service_error_class()
IDS = {"ids": lambda c: f"{c.__module__}.{c.__qualname__}"}


@pytest.mark.parametrize("cls", ERROR_CLASSES, **IDS)
def test_every_service_error_has_a_row_of_its_own(cls: type) -> None:
    assert cls in ERROR_TABLE, f"{cls.__qualname__} has no row in printsrv/error_table.py"


@pytest.mark.parametrize("cls", ERROR_CLASSES, **IDS)
def test_a_row_keeps_its_parents_kind_of_answer(cls: type) -> None:
    """A refusal stays a client error and an outage a server error at every door."""
    row = ERROR_TABLE[cls]
    if issubclass(cls, errors.ServiceUnavailable):
        assert row.status == 503
    elif issubclass(cls, (errors.InvalidInput, errors.NotAllowed, errors.NotFound)):
        assert 400 <= row.status < 500
    assert row.jsonrpc[0] < 0 and row.fault > 0


def test_the_table_has_no_row_for_a_class_that_is_not_a_service_error() -> None:
    assert all(issubclass(cls, errors.PrintsrvError) for cls in ERROR_TABLE)


def test_a_class_without_a_row_gets_its_nearest_parents_row() -> None:
    class Surprise(errors.NotFound):
        pass

    assert answer_for(Surprise("gone")) == ERROR_TABLE[errors.NotFound]


def test_every_adapter_renders_from_the_same_row() -> None:
    error = PrinterNotFound("hall-a")
    row = ERROR_TABLE[PrinterNotFound]
    assert status_for(error) == row.status == 404
    assert page_status_for(error) == 404
    assert answer_for(error).jsonrpc == row.jsonrpc
    assert answer_for(error).fault == row.fault


def test_a_page_never_asks_for_http_authentication() -> None:
    refusal = errors.NotAuthenticated("who are you?")
    assert status_for(refusal) == 401
    assert page_status_for(refusal) == 403


def test_retry_after_only_when_trying_again_later_can_help() -> None:
    assert retry_after(errors.UnderMaintenance("maintenance")) == 60
    assert retry_after(errors.DatabaseUnavailable("down")) == 5
    assert retry_after(CupsUnavailable("cups:631", "refused")) == 5
    assert retry_after(LoginThrottled("slow down", retry_after=42)) == 42
    assert retry_after(errors.NotFound("gone")) is None
    assert retry_after(errors.InvalidInput("bad")) is None


def test_the_createtoken_refusals_have_distinct_fault_codes() -> None:
    from printsrv.people import tokens

    cases = [
        tokens.TtpLoginDisabled("x"),
        tokens.ApiKeyRejected("x"),
        errors.NotFound("x"),
        tokens.UserDisabled("x"),
        errors.DatabaseUnavailable("x"),
    ]
    codes = [answer_for(error).fault for error in cases]
    assert len(set(codes)) == len(codes)


def test_error_envelopes_keep_their_shapes() -> None:
    assert failure("x", 404).body == b'{"succes":false,"error":"x"}'
    assert error_object("id", -32601, "Method not found", "m") == {
        "jsonrpc": "2.0",
        "id": "id",
        "result": False,
        "error": {
            "code": -32601,
            "message": "Method not found",
            "data": {"@type": "BASIC", "reason": "m"},
        },
    }

"""The error tree, the pycups error mapping, and building values from IPP attributes."""

from __future__ import annotations

from pathlib import Path

import cups
import pytest

from printsrv.errors import InvalidInput, NotFound, PrintsrvError, ServiceUnavailable
from printsrv.printing import errors as printing_errors
from printsrv.printing.cupsclient import CupsClient, map_cups_errors
from printsrv.printing.errors import (
    CupsUnavailable,
    JobNotFound,
    OptionRejected,
    PrinterNotFound,
    PrintingError,
    SubmitFailed,
)
from printsrv.printing.types import job_status_from_attributes, printer_info_from_attributes

SERVER = "/run/test/cups.sock"


def test_every_printing_error_is_a_printsrv_error() -> None:
    for name in printing_errors.__all__:
        cls = getattr(printing_errors, name)
        assert issubclass(cls, PrintingError)
        assert issubclass(cls, PrintsrvError)
        assert cls.__doc__


@pytest.mark.parametrize(
    ("cls", "also"),
    [
        (CupsUnavailable, ServiceUnavailable),
        (PrinterNotFound, NotFound),
        (JobNotFound, NotFound),
        (OptionRejected, InvalidInput),
    ],
)
def test_second_parents_for_adapter_tables(cls: type, also: type) -> None:
    assert issubclass(cls, also)


def raised_from(exc: BaseException, **kw: object) -> PrintingError:
    with pytest.raises(PrintingError) as caught, map_cups_errors(SERVER, **kw):  # type: ignore[arg-type]
        raise exc
    assert caught.value.__cause__ is exc
    return caught.value


def test_service_unavailable_maps_to_cups_unavailable() -> None:
    error = raised_from(cups.IPPError(cups.IPP_SERVICE_UNAVAILABLE, "Service Unavailable"))
    assert isinstance(error, CupsUnavailable)
    assert error.server == SERVER
    assert str(error) == f"CUPS server '{SERVER}' is unavailable: Service Unavailable"


def test_refused_connection_maps_to_cups_unavailable() -> None:
    error = raised_from(RuntimeError("failed to connect to server"))
    assert isinstance(error, CupsUnavailable)
    assert "failed to connect" in str(error)


def test_http_error_maps_to_cups_unavailable() -> None:
    error = raised_from(cups.HTTPError(403))
    assert isinstance(error, CupsUnavailable)
    assert "403" in str(error)


def test_not_found_depends_on_what_was_asked() -> None:
    missing = cups.IPPError(cups.IPP_NOT_FOUND, "client-error-not-found")
    assert isinstance(raised_from(missing, job_id=7), JobNotFound)
    printer_error = raised_from(missing, printer="lab")
    assert isinstance(printer_error, PrinterNotFound)
    assert printer_error.printer == "lab"


def test_bad_value_maps_to_option_rejected_with_printer_values() -> None:
    info = printer_info_from_attributes("lab", {"number-up-supported": [1, 2, 4]})
    error = raised_from(
        cups.IPPError(cups.IPP_ATTRIBUTES, "Bad number-up value 7."),
        printer="lab",
        printer_info=info,
    )
    assert isinstance(error, OptionRejected)
    assert (error.attribute, error.value, error.supported) == ("number-up", "7", ("1", "2", "4"))


def test_other_submit_refusals_map_to_submit_failed() -> None:
    error = raised_from(
        cups.IPPError(cups.IPP_DOCUMENT_FORMAT, 'Unsupported document-format "x/y".'),
        printer="lab",
        submitting=True,
    )
    assert isinstance(error, SubmitFailed)
    assert "Unsupported document-format" in str(error)


@pytest.mark.parametrize("about", [{"job_id": 3}, {"printer": "lab"}, {}])
def test_unexpected_status_outside_submit_maps_to_printing_error(about: dict[str, object]) -> None:
    error = raised_from(cups.IPPError(cups.IPP_FORBIDDEN, "Forbidden"), **about)
    assert type(error) is PrintingError
    assert "0x0401" in str(error)


def test_printsrv_errors_pass_through_unchanged() -> None:
    original = JobNotFound(1)
    with pytest.raises(JobNotFound) as caught, map_cups_errors(SERVER):
        raise original
    assert caught.value is original


# -- values from IPP attributes -------------------------------------------------------------


def test_printer_info_tolerates_missing_and_scalar_attributes() -> None:
    info = printer_info_from_attributes(
        "bare", {"printer-state": 5, "sides-supported": "one-sided", "copies-supported": 1}
    )
    assert info.state == "stopped"
    assert info.accepting is False
    assert info.sides_supported == ("one-sided",)
    assert info.copies_supported == (1, 1)
    assert info.media_supported == ()
    assert info.sheet_collate_supported == ("collated", "uncollated")
    assert info.number_up_supported == (1,)
    assert info.page_ranges_supported is False
    assert info.default_options() == {}
    assert info.state_reasons == ()


def test_printer_defaults_skip_no_value_and_collections() -> None:
    info = printer_info_from_attributes(
        "p",
        {
            "orientation-requested-default": None,
            "media-default": "(unknown IPP value tag 0x34)",
            "sides-default": "one-sided",
        },
    )
    assert info.default_options() == {"sides": "one-sided"}


@pytest.mark.parametrize(
    ("enum", "state", "final"),
    [
        (3, "pending", False),
        (4, "held", False),
        (5, "processing", False),
        (6, "stopped", False),
        (7, "canceled", True),
        (8, "aborted", True),
        (9, "completed", True),
        (42, "unknown", False),
    ],
)
def test_job_states(enum: int, state: str, final: bool) -> None:
    status = job_status_from_attributes(
        5,
        {
            "job-state": enum,
            "job-printer-uri": "ipp://localhost/printers/lab",
            "job-impressions-completed": 4,
        },
    )
    assert (status.state, status.final) == (state, final)
    assert (status.printer, status.impressions, status.sheets, status.message) == ("lab", 4, 0, "")


# -- the one race a real cupsd cannot stage on demand ------------------------------------------


class _InternalErrorOnPrint:
    """A stand-in for ``cups.Connection``: the printer exists, then Print-Job fails with
    internal-error, which cupsd answers both for "gone mid-request" and for its own trouble."""

    connections = 0
    server_up_after_failure = True

    def __init__(self) -> None:
        type(self).connections += 1
        if type(self).connections > 1 and not type(self).server_up_after_failure:
            raise RuntimeError("failed to connect to server")

    def getPrinterAttributes(self, name: str, requested_attributes: list[str]) -> dict[str, object]:
        return {"printer-is-accepting-jobs": True, "printer-state": 3}

    def printFile(self, *args: object) -> int:
        raise cups.IPPError(cups.IPP_INTERNAL_ERROR, "No such file or directory")


@pytest.mark.parametrize(
    ("server_up", "expected"), [(True, SubmitFailed), (False, CupsUnavailable)]
)
def test_internal_error_on_print_is_told_apart_by_a_probe(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server_up: bool, expected: type
) -> None:
    monkeypatch.setattr(_InternalErrorOnPrint, "connections", 0)
    monkeypatch.setattr(_InternalErrorOnPrint, "server_up_after_failure", server_up)
    monkeypatch.setattr(cups, "Connection", _InternalErrorOnPrint)
    document = tmp_path / "doc.pdf"
    document.write_bytes(b"%PDF-1.4\n")
    with CupsClient(SERVER, max_workers=1) as client, pytest.raises(expected):
        client.submit_sync("lab", document, "t", {}, "zoe")
    assert _InternalErrorOnPrint.connections == 2  # the submit and the probe

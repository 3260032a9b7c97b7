"""CupsClient against a real private cupsd: capabilities, submit, follow, fail, cancel, errors."""

from __future__ import annotations

import asyncio
import io
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cupsd import (
    CAPTURE_QUEUE,
    FAIL_MESSAGE,
    FAIL_QUEUE,
    NULL_QUEUE,
    PrivateCups,
    parse_backend_options,
)
from pypdf import PdfReader

from printsrv.errors import InvalidInput, NotFound, ServiceUnavailable
from printsrv.printing.costs import count_sheets
from printsrv.printing.cupsclient import CupsClient
from printsrv.printing.errors import (
    CupsUnavailable,
    JobNotFound,
    OptionRejected,
    PrinterNotFound,
    SubmitFailed,
)
from printsrv.printing.options import validate_options
from printsrv.printing.types import JobStatus

WaitFinal = Callable[[int], JobStatus]
WaitState = Callable[[int, str], JobStatus]

FULL_OPTIONS = {
    "copies": "2",
    "sides": "two-sided-long-edge",
    "print-color-mode": "monochrome",
    "media": "iso_a4_210x297mm",
    "sheet-collate": "collated",
}


@pytest.fixture
def own_queue(cupsd: PrivateCups) -> Iterator[str]:
    """A fresh /dev/null queue for a test that changes queue state, removed afterwards."""
    name = f"q-{uuid.uuid4().hex[:8]}"
    cupsd.add_queue(name, "null")
    yield name
    cupsd.remove_queue(name)


# -- capabilities ---------------------------------------------------------------------------


def test_printer_reports_ipp_capabilities(client: CupsClient) -> None:
    info = client.printer_sync(CAPTURE_QUEUE)
    assert info.name == CAPTURE_QUEUE
    assert info.state == "idle"
    assert info.accepting is True
    assert info.make_and_model == "Generic PDF Printer"
    assert info.copies_supported == (1, 9999)
    assert info.sides_supported == ("one-sided", "two-sided-long-edge", "two-sided-short-edge")
    assert set(info.print_color_mode_supported) == {"monochrome", "color"}
    assert "iso_a4_210x297mm" in info.media_supported
    assert info.number_up_supported == (1, 2, 4, 6, 9, 16)
    assert info.page_ranges_supported is True
    # CUPS does not advertise sheet-collate-supported although it honours sheet-collate.
    assert info.sheet_collate_supported == ("collated", "uncollated")
    defaults = info.default_options()
    assert defaults["sides"] == "one-sided"
    assert defaults["copies"] == "1"
    assert "orientation-requested" not in defaults  # CUPS sends no-value for it


def test_list_printers_includes_every_session_queue_sorted(client: CupsClient) -> None:
    printers = client.list_printers_sync()
    names = [p.name for p in printers]
    assert {CAPTURE_QUEUE, FAIL_QUEUE, NULL_QUEUE} <= set(names)
    assert names == sorted(names)


def test_real_printer_capabilities_refuse_a_keyword_cups_would_accept(client: CupsClient) -> None:
    info = client.printer_sync(CAPTURE_QUEUE)
    with pytest.raises(OptionRejected) as caught:
        validate_options({"sides": "three-sided"}, info)
    assert caught.value.supported == info.sides_supported


# -- submit and follow ----------------------------------------------------------------------


def test_submit_delivers_every_option_and_the_rendered_pages(
    client: CupsClient,
    cupsd: PrivateCups,
    make_pdf: Callable[[int], Path],
    wait_final: WaitFinal,
) -> None:
    job_id = client.submit_sync(CAPTURE_QUEUE, make_pdf(3), "Three pages", FULL_OPTIONS, "alice")

    status = wait_final(job_id)
    assert status.state == "completed"
    assert status.final is True
    assert status.printer == CAPTURE_QUEUE
    # CUPS counts the blank page added so the second copy starts on a new sheet.
    assert (status.impressions, status.sheets) == (8, 4)
    assert count_sheets(3, FULL_OPTIONS)[1] == status.sheets

    env = cupsd.read_env(CAPTURE_QUEUE, job_id)
    assert env["USER"] == "alice"
    assert env["TITLE"] == "Three pages"
    assert env["COPIES"] == "2"
    options = parse_backend_options(env["OPTIONS"])
    for name in ("sides", "print-color-mode", "media", "sheet-collate"):
        assert options[name] == FULL_OPTIONS[name]
    assert options["Duplex"] == "DuplexNoTumble"  # the PPD's translation of the IPP sides
    assert options["PageSize"] == "A4"

    pdf = PdfReader(io.BytesIO(cupsd.read_output_pdf(CAPTURE_QUEUE, job_id)))
    assert len(pdf.pages) == 8  # 2 copies x (3 pages + 1 blank back)


def test_async_submit_and_job_state(
    client: CupsClient, make_pdf: Callable[[int], Path], wait_final: WaitFinal
) -> None:
    async def go() -> tuple[int, str]:
        job_id = await client.submit(NULL_QUEUE, make_pdf(1), "async", {"copies": "1"}, "bob")
        status = await client.job_state(job_id)
        return job_id, status.state

    job_id, first_state = asyncio.run(go())
    assert first_state in {"pending", "processing", "completed"}
    assert wait_final(job_id).state == "completed"


def test_concurrent_submits_keep_each_job_user_and_all_complete(
    client: CupsClient,
    cupsd: PrivateCups,
    make_pdf: Callable[[int], Path],
    wait_final: WaitFinal,
) -> None:
    # The user is a per-thread libcups setting too; eight jobs over four threads must not mix.
    async def go() -> list[int]:
        return list(
            await asyncio.gather(
                *(
                    client.submit(CAPTURE_QUEUE, make_pdf(1), f"c{i}", {}, f"user{i}")
                    for i in range(8)
                )
            )
        )

    job_ids = asyncio.run(go())
    assert len(set(job_ids)) == 8
    assert {wait_final(job_id).state for job_id in job_ids} == {"completed"}
    users = [cupsd.read_env(CAPTURE_QUEUE, job_id)["USER"] for job_id in job_ids]
    assert users == [f"user{i}" for i in range(8)]


def test_job_title_is_cleaned_for_ipp(
    client: CupsClient,
    cupsd: PrivateCups,
    make_pdf: Callable[[int], Path],
    wait_final: WaitFinal,
) -> None:
    title = "bad\x00name\n" + "x" * 10_000
    job_id = client.submit_sync(CAPTURE_QUEUE, make_pdf(1), title, {}, "carol")
    wait_final(job_id)
    sent = cupsd.read_env(CAPTURE_QUEUE, job_id)["TITLE"]
    assert sent.startswith("bad name ")
    assert len(sent.encode()) <= 255


def test_failing_device_aborts_the_job_with_the_backend_error(
    client: CupsClient, make_pdf: Callable[[int], Path], wait_final: WaitFinal
) -> None:
    job_id = client.submit_sync(FAIL_QUEUE, make_pdf(1), "doomed", {}, "dave")
    status = wait_final(job_id)
    assert status.state == "aborted"
    assert status.final is True
    assert FAIL_MESSAGE in status.message


# -- cancel ---------------------------------------------------------------------------------


def test_cancel_a_held_job(
    client: CupsClient, make_pdf: Callable[[int], Path], wait_state: WaitState
) -> None:
    # job-hold-until is not a printsrv option; the client passes options through unchecked.
    job_id = client.submit_sync(
        NULL_QUEUE, make_pdf(1), "held", {"job-hold-until": "indefinite"}, "eve"
    )
    assert wait_state(job_id, "held").final is False
    status = client.cancel_sync(job_id)
    assert (status.state, status.final) == ("canceled", True)
    # Cancelling again is harmless and reports the same final state.
    assert client.cancel_sync(job_id).state == "canceled"


def test_cancel_of_a_completed_job_reports_completed(
    client: CupsClient, make_pdf: Callable[[int], Path], wait_final: WaitFinal
) -> None:
    job_id = client.submit_sync(NULL_QUEUE, make_pdf(1), "done", {}, "frank")
    wait_final(job_id)
    assert asyncio.run(client.cancel(job_id)).state == "completed"


def test_job_on_a_stopped_queue_stays_pending_until_cancelled(
    client: CupsClient, cupsd: PrivateCups, make_pdf: Callable[[int], Path], own_queue: str
) -> None:
    cupsd.set_enabled(own_queue, False)
    job_id = client.submit_sync(own_queue, make_pdf(1), "waiting", {}, "gina")
    assert client.job_state_sync(job_id).state == "pending"
    assert client.printer_sync(own_queue).state == "stopped"
    assert client.cancel_sync(job_id).state == "canceled"


# -- errors ---------------------------------------------------------------------------------


def test_missing_printer_raises_printer_not_found(
    client: CupsClient, make_pdf: Callable[[int], Path]
) -> None:
    with pytest.raises(PrinterNotFound) as caught:
        client.submit_sync("no-such-printer", make_pdf(1), "t", {}, "hal")
    assert caught.value.printer == "no-such-printer"
    assert isinstance(caught.value, NotFound)
    with pytest.raises(PrinterNotFound):
        client.printer_sync("no-such-printer")


def test_missing_job_raises_job_not_found(client: CupsClient) -> None:
    with pytest.raises(JobNotFound) as caught:
        client.job_state_sync(987_654)
    assert caught.value.job_id == 987_654
    with pytest.raises(JobNotFound):
        client.cancel_sync(987_654)


def test_cupsd_refusal_of_copies_becomes_option_rejected(
    client: CupsClient, make_pdf: Callable[[int], Path]
) -> None:
    with pytest.raises(OptionRejected) as caught:
        client.submit_sync(CAPTURE_QUEUE, make_pdf(1), "t", {"copies": "0"}, "ivan")
    assert caught.value.attribute == "copies"
    assert caught.value.value == "0"
    assert caught.value.supported == ("1-9999",)
    assert isinstance(caught.value, InvalidInput)
    assert type(caught.value.__cause__).__name__ == "IPPError"


def test_queue_rejecting_jobs_raises_submit_failed(
    client: CupsClient, cupsd: PrivateCups, make_pdf: Callable[[int], Path], own_queue: str
) -> None:
    cupsd.set_accepting(own_queue, False)
    with pytest.raises(SubmitFailed, match="not accepting"):
        client.submit_sync(own_queue, make_pdf(1), "t", {}, "judy")


def test_unreadable_document_raises_submit_failed(client: CupsClient, tmp_path: Path) -> None:
    with pytest.raises(SubmitFailed, match="not a readable file"):
        client.submit_sync(NULL_QUEUE, tmp_path / "missing.pdf", "t", {}, "kim")


def test_stopped_cupsd_raises_cups_unavailable(make_pdf: Callable[[int], Path]) -> None:
    # A second cupsd, so that stopping it leaves the session one alone.
    with PrivateCups() as other, CupsClient(other.tcp_server) as client:
        other.add_queue("gone", "null")
        job_id = client.submit_sync("gone", make_pdf(1), "t", {}, "leo")
        other.stop()
        calls: list[Callable[[], object]] = [
            client.list_printers_sync,
            lambda: client.printer_sync("gone"),
            lambda: client.submit_sync("gone", make_pdf(1), "t", {}, "leo"),
            lambda: client.job_state_sync(job_id),
            lambda: client.cancel_sync(job_id),
        ]
        for call in calls:
            with pytest.raises(CupsUnavailable) as caught:
                call()
            assert isinstance(caught.value, ServiceUnavailable)
            assert caught.value.server == other.tcp_server


def test_clients_of_two_servers_do_not_share_libcups_state(
    client: CupsClient, make_pdf: Callable[[int], Path], wait_final: WaitFinal
) -> None:
    # libcups' server is per thread: each call must set its own, whatever ran before it there.
    with PrivateCups() as other, CupsClient(other.server, max_workers=1) as other_client:
        other.add_queue("only-here", "null")
        for _ in range(3):
            assert other_client.printer_sync("only-here").name == "only-here"
            with pytest.raises(PrinterNotFound):
                client.printer_sync("only-here")
        job_id = other_client.submit_sync("only-here", make_pdf(1), "t", {}, "mia")
        assert other_client.job_state_sync(job_id).printer == "only-here"


def test_closed_client_refuses_calls(cupsd: PrivateCups) -> None:
    closed = CupsClient(cupsd.server)
    closed.close()
    with pytest.raises(RuntimeError, match="closed"):
        closed.list_printers_sync()


def test_a_submission_to_a_cupsd_that_never_answers_gives_up_after_its_timeout(
    make_pdf: Callable[[int], Path],
) -> None:
    # A hung cupsd: a socket that takes the connection (the kernel accepts it into the
    # backlog) and never answers. pycups has no timeout; without one this call never returns.
    silent = socket.create_server(("127.0.0.1", 0))
    server = f"127.0.0.1:{silent.getsockname()[1]}"
    client = CupsClient(server)
    try:
        started = time.monotonic()
        with pytest.raises(CupsUnavailable, match=r"no answer within 0\.5 s") as caught:
            client.submit_sync("any", make_pdf(1), "t", {}, "leo", timeout=0.5)
        assert time.monotonic() - started < 5
        assert caught.value.server == server
        assert isinstance(caught.value, ServiceUnavailable)  # the error table's 503 row
    finally:
        silent.close()  # resets the waiting connection, so the worker thread returns
        client.close()

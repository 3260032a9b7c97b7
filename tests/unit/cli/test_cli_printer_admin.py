"""`printsrv printer add` and `printer remove` against a real private cupsd (issue 14 item 8).

Each test gets its own cupsd (it starts in well under a second), so queues added here never
reach the session cupsd other printing tests share.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cupsd import GENERIC_PDF_PPD, PrivateCups
from printing_support import pdf_bytes
from sqlalchemy import select
from support import set_config

import financial
from printsrv.cli import main
from printsrv.documents.store import sha256_of
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.people.models import User
from printsrv.platform.environment import Environment
from printsrv.platform.uploads import Upload
from printsrv.printing.context import PrintContext
from printsrv.printing.intake import accept_upload
from printsrv.printing.models import Printer, PrintJob


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def ok(*args: str) -> str:
    code, output = run(*args)
    assert code == 0, output
    return output


@pytest.fixture
def cups() -> Iterator[PrivateCups]:
    server = PrivateCups(prefix="printsrv-admin-cupsd-").start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def installation_on_cups(
    installation: Installation, cups: PrivateCups, process_env: Environment
) -> Installation:
    """The test's installation with cups.server set to the private cupsd, as an admin does."""
    set_config(installation, {"cups.server": cups.server})
    return installation


def cups_queues(cups: PrivateCups) -> set[str]:
    """The queues the private cupsd has, asked with lpstat (not through printsrv)."""
    result = subprocess.run(
        ["lpstat", "-h", cups.server, "-v"], capture_output=True, text=True, check=False
    )
    # "device for NAME: URI"
    return {line.split()[2].rstrip(":") for line in result.stdout.splitlines() if line}


def printer_rows(installation: Installation) -> dict[str, bool]:
    with installation.db.read() as session:
        return {p.name: p.present for p in session.scalars(select(Printer))}


def print_through(installation: Installation, queue: str, tmp_path: Path) -> int:
    """Upload a one-page PDF to ``queue`` as the REST handler does; return the CUPS job id."""
    with installation.db.transaction() as session:
        if users.find_user(session, "janet") is None:
            users.add_user(session, "janet")
        user = session.scalar(select(User).where(User.user_name == "janet"))
        assert user is not None
    work = tmp_path / f"work-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    path = work / "upload"
    path.write_bytes(pdf_bytes(1))
    document = Upload(
        fields={"queue": queue},
        path=path,
        file_name="first.pdf",
        size=path.stat().st_size,
        sha256=sha256_of(path),
    )
    context = PrintContext.of(installation)
    accepted = asyncio.run(
        accept_upload(context, user=user, upload=document, client_host="127.0.0.1", work_dir=work)
    )
    assert accepted.status == "printing", accepted
    with installation.db.read() as session:
        job = session.scalar(select(PrintJob).order_by(PrintJob.id.desc()))
        assert job is not None and job.cups_job_id is not None
        return job.cups_job_id


def test_help() -> None:
    for verb in (["printer", "add"], ["printer", "remove"]):
        output = ok(*verb, "--help")
        assert "Usage:" in output and "CUPS" in output


def test_add_with_the_generic_pdf_ppd_then_print(
    installation_on_cups: Installation, cups: PrivateCups, tmp_path: Path
) -> None:
    target = cups.capture_dir("hall-pdf")
    target.mkdir(mode=0o755)
    output = ok(
        "printer", "add", "hall-pdf", "--uri", f"capture:{target}", "--ppd", GENERIC_PDF_PPD,
        "--description", "Hall PDF", "--location", "Main hall",
    )  # fmt: skip
    assert "Printer 'hall-pdf' added on CUPS server" in output
    assert "Generic PDF Printer" in output and "accepting jobs" in output
    assert "hall-pdf" in cups_queues(cups)
    # Synced into printsrv's printers, with its capabilities, at once.
    listed = ok("printer", "list")
    assert "hall-pdf" in listed and "idle" in listed
    shown = ok("printer", "show", "hall-pdf")
    assert "Main hall" in shown and "two-sided-long-edge" in shown

    # Route a queue to it and print: the document reaches the device.
    ok("queue", "add", "lab", "--printer", "hall-pdf")
    job_id = print_through(installation_on_cups, "lab", tmp_path)
    assert cups.read_output_pdf("hall-pdf", job_id).startswith(b"%PDF-")
    assert cups.read_env("hall-pdf", job_id)["USER"] == "janet"


def test_add_a_file_queue_with_a_model(
    installation_on_cups: Installation, cups: PrivateCups, tmp_path: Path
) -> None:
    missing = cups.out_dir / "missing.out"
    code, output = run(
        "printer", "add", "to-file", "--uri", f"file://{missing}",
        "--model", "lsb/usr/cupsfilters/Generic-PDF_Printer-PDF.ppd",
    )  # fmt: skip
    assert code == 1 and "does not exist; CUPS does not create it" in output
    assert "to-file" not in cups_queues(cups)

    out = cups.prepare_output_file(cups.out_dir / "to-file.out")
    ok(
        "printer", "add", "to-file", "--uri", f"file://{out}",
        "--model", "lsb/usr/cupsfilters/Generic-PDF_Printer-PDF.ppd",
    )  # fmt: skip
    ok("queue", "add", "desk", "--printer", "to-file")
    print_through(installation_on_cups, "desk", tmp_path)
    deadline = time.monotonic() + 10
    while b"%PDF-" not in out.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b"%PDF-" in out.read_bytes(), cups.error_log_tail()


def test_add_ipp_everywhere_from_a_printer_that_answers(
    installation_on_cups: Installation, cups: PrivateCups
) -> None:
    # The private cupsd's own queue is a real IPP printer: cupsd builds the IPP Everywhere
    # driver from its answer, as it would from a network printer's.
    cups.add_queue("device", "null")
    uri = f"ipp://127.0.0.1:{cups.port}/printers/device"
    output = ok("printer", "add", "everywhere-1", "--uri", uri)
    assert "IPP Everywhere" in output and "accepting jobs" in output
    shown = ok("printer", "show", "everywhere-1")
    assert "IPP Everywhere" in shown and "iso_a4_210x297mm" in shown


def test_refusals_change_nothing(installation_on_cups: Installation, cups: PrivateCups) -> None:
    cups.add_queue("taken", "null")
    ok("printer", "sync")
    before = (cups_queues(cups), printer_rows(installation_on_cups))
    generic = ("--ppd", GENERIC_PDF_PPD)
    cases: list[tuple[tuple[str, ...], int, str]] = [
        # IPP Everywhere against nothing: the printer is asked first, as lpadmin does.
        (("ev", "--uri", "ipp://127.0.0.1:1/ipp/print"), 1, "No IPP printer answers at"),
        (("ev", "--uri", "socket://192.0.2.1:9100"), 1, "needs an ipp:// or ipps://"),
        (("bad-uri", "--uri", "not a uri", *generic), 1, "is not a URI"),
        (("bad-scheme", "--uri", "nosuch:/x", *generic), 1, "no backend for device URI scheme"),
        (("TAKEN", "--uri", "file:///dev/null", *generic), 1, "'taken' already exists"),
        (("a b", "--uri", "file:///dev/null", *generic), 1, "Printer name 'a b' must be"),
        (("slash/y", "--uri", "file:///dev/null", *generic), 1, "Printer name"),
        (
            ("no-model", "--uri", "file:///dev/null", "--model", "drv:///nothere.drv/x.ppd"),
            1,
            "has no model 'drv:///nothere.drv/x.ppd'",
        ),
        (("not-ppd", "--uri", "file:///dev/null", "--ppd", __file__), 1, "not a PPD"),
        (("both", "--uri", "file:///dev/null", *generic, "--model", "everywhere"), 2, "give one"),
        (("no-uri",), 2, "--uri"),
    ]
    for args, status, message in cases:
        code, output = run("printer", "add", *args)
        assert code == status and message in output, (args, output)
    assert (cups_queues(cups), printer_rows(installation_on_cups)) == before


def test_no_cups_reachable(installation_on_cups: Installation, tmp_path: Path) -> None:
    set_config(installation_on_cups, {"cups.server": str(tmp_path / "no-cupsd.sock")})
    code, output = run("printer", "add", "x", "--uri", "file:///dev/null", "--ppd", GENERIC_PDF_PPD)
    assert code == 1 and "is unavailable" in output and "cups.server" in output
    code, output = run("printer", "remove", "x")
    assert code == 1 and "is unavailable" in output
    assert printer_rows(installation_on_cups) == {}


def test_remove_marks_the_printer_gone(
    installation_on_cups: Installation, cups: PrivateCups
) -> None:
    ok("printer", "add", "old", "--uri", "file:///dev/null", "--ppd", GENERIC_PDF_PPD)
    ok("printer", "cost", "old", "--per-side", "0.10")
    ok("queue", "add", "lab", "--printer", "old")
    output = ok("printer", "remove", "old")
    assert "Printer 'old' removed from CUPS server" in output
    assert "Queues still routed to it: lab" in output
    assert "old" not in cups_queues(cups)
    # As sync does for a printer that left CUPS: the row stays, marked gone.
    assert printer_rows(installation_on_cups) == {"old": False}
    assert "gone" in ok("printer", "list")
    assert "no longer on CUPS" not in ok("printer", "sync")  # sync agrees: nothing to do

    code, output = run("printer", "remove", "old")
    assert code == 1 and "not on CUPS server" in output and "already lists it as gone" in output
    code, output = run("printer", "remove", "never")
    assert code == 1 and "Printer 'never' is not on CUPS server" in output

    # Added again under that name: back, with its prices.
    ok("printer", "add", "old", "--uri", "file:///dev/null", "--ppd", GENERIC_PDF_PPD)
    assert printer_rows(installation_on_cups) == {"old": True}
    assert "0.100000" in ok("printer", "show", "old")


def test_remove_a_printer_that_already_left_cups(
    installation_on_cups: Installation, cups: PrivateCups
) -> None:
    cups.add_queue("vanished", "null")
    ok("printer", "sync")
    cups.remove_queue("vanished")
    output = ok("printer", "remove", "vanished")
    assert "was not on CUPS" in output
    assert printer_rows(installation_on_cups) == {"vanished": False}
    with installation_on_cups.db.read() as session:
        assert financial.list_accounts(session) == []  # nothing else was touched


@pytest.fixture
def default_cups() -> Iterator[PrivateCups]:
    """A private cupsd with Debian's default FileDevice No (the fixture's own says Yes)."""
    server = PrivateCups(prefix="printsrv-admin-cupsd-")
    files = server.base / "cups-files.conf"
    files.write_text(files.read_text().replace("FileDevice Yes\n", ""))
    try:
        yield server.start()
    finally:
        server.close()


def test_readme_first_printer_on_debians_default_cupsd(
    installation: Installation, default_cups: PrivateCups, process_env: Environment, tmp_path: Path
) -> None:
    """The README's "Your first printer": file:///dev/null is allowed, other files are not."""
    ok("config", "set", "cups.server", default_cups.server)
    out = default_cups.prepare_output_file(default_cups.out_dir / "x.out")
    code, output = run("printer", "add", "x", "--uri", f"file://{out}", "--ppd", GENERIC_PDF_PPD)
    assert code == 1 and "refuses file: device URIs (FileDevice No" in output
    ok(
        "printer", "add", "hall-laser", "--uri", "file:///dev/null", "--ppd", GENERIC_PDF_PPD,
        "--location", "Main hall",
    )  # fmt: skip
    ok("queue", "add", "first", "--printer", "hall-laser")
    job_id = print_through(installation, "first", tmp_path)
    context = PrintContext.of(installation)
    deadline = time.monotonic() + 10
    while context.cups.job_state_sync(job_id).state != "completed":
        assert time.monotonic() < deadline, default_cups.error_log_tail()
        time.sleep(0.02)

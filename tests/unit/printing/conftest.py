"""Fixtures for printing tests: one private cupsd per session, a client on it, test PDFs.

The cupsd comes from ``tests/cupsd.py``. Tests share it but never each other's jobs: each test
submits its own jobs and reads back only those ids, and a test that changes a queue's state
creates its own queue, so the tests pass in any order.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

TESTS_DIR = Path(__file__).resolve().parents[2]
if str(TESTS_DIR) not in sys.path:
    # tests/ has no __init__.py; make `import cupsd` work however pytest was started.
    sys.path.insert(0, str(TESTS_DIR))

from cupsd import PrivateCups  # noqa: E402

from printsrv.printing.cupsclient import CupsClient  # noqa: E402
from printsrv.printing.types import JobStatus  # noqa: E402


@pytest.fixture(scope="session")
def cupsd() -> Iterator[PrivateCups]:
    """A private cupsd with a capture queue, an always-failing queue and a /dev/null queue."""
    server = PrivateCups().start()
    try:
        server.add_standard_queues()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def client(cupsd: PrivateCups) -> Iterator[CupsClient]:
    """A ``CupsClient`` on the session cupsd, over its Unix socket."""
    with CupsClient(cupsd.server) as cups_client:
        yield cups_client


def write_pdf(path: Path, pages: int) -> Path:
    """Write an A4 PDF with ``pages`` numbered pages."""
    pdf = canvas.Canvas(str(path), pagesize=A4)
    for number in range(1, pages + 1):
        pdf.drawString(72, 760, f"printsrv test page {number} of {pages}")
        pdf.showPage()
    pdf.save()
    return path


@pytest.fixture(scope="session")
def make_pdf(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """Return a function making (once per page count) a PDF of that many pages."""
    made: dict[int, Path] = {}
    # tmp_path is fine for documents: libcups reads them in the client process, not as lp.
    directory = tmp_path_factory.mktemp("pdfs")

    def make(pages: int) -> Path:
        if pages not in made:
            made[pages] = write_pdf(directory / f"doc-{pages}.pdf", pages)
        return made[pages]

    return make


@pytest.fixture(scope="session")
def wait_final(client: CupsClient, cupsd: PrivateCups) -> Callable[[int], JobStatus]:
    """Return a function polling a job on the session cupsd until its state is final."""

    def wait(job_id: int, timeout: float = 10.0) -> JobStatus:
        deadline = time.monotonic() + timeout
        while True:
            status = client.job_state_sync(job_id)
            if status.final:
                return status
            if time.monotonic() > deadline:
                pytest.fail(
                    f"job {job_id} still {status.state} after {timeout} s\n{cupsd.error_log_tail()}"
                )
            time.sleep(0.01)

    return wait


@pytest.fixture(scope="session")
def wait_state(client: CupsClient) -> Callable[[int, str], JobStatus]:
    """Return a function polling a job on the session cupsd until it reaches a given state."""

    def wait(job_id: int, state: str, timeout: float = 10.0) -> JobStatus:
        deadline = time.monotonic() + timeout
        while True:
            status = client.job_state_sync(job_id)
            if status.state == state:
                return status
            if time.monotonic() > deadline:
                pytest.fail(f"job {job_id} is {status.state}, not {state}, after {timeout} s")
            time.sleep(0.01)

    return wait

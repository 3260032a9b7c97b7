"""A server process killed while its print waits in CUPS: the next process finishes the job.

A real `printsrv serve` prints to a stopped CUPS queue (the job stays pending), is killed with
SIGKILL (no shutdown, no clean-up), and a new process starts on the same home and database.
Then CUPS finishes the job (the queue is started) or cancels it, and the new process's tracker
must bring the job to its final state with the charge, and the refund when due, applied
exactly once.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from printing_support import (
    PrintSetup,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    upload,
)
from sqlalchemy import select
from support import TEST_SECRET, ServeProcess

from financial.schema import AccountTrx, TrxType
from printsrv.printing import queues

# A killed tracker may have held a lease on the job (30 s) when it died; the new one waits it out.
FINISH_TIMEOUT = 45.0


@pytest.fixture
def stopped_printer(printing_setup: PrintSetup) -> Iterator[str]:  # noqa: F811
    """A CUPS queue that accepts jobs and keeps them pending, priced and routed as `slow`."""
    setup = printing_setup
    name = f"stopped-{uuid.uuid4().hex[:8]}"
    setup.cups.add_queue(name, "null")
    setup.cups.set_enabled(name, False)
    try:
        setup.sync()
        setup.set_cost(name, "0.25")
        with setup.installation.db.transaction() as session:
            queues.add_queue(session, "slow", printer=name, ipp_options={})
        yield name
    finally:
        setup.cups.remove_queue(name)


def serve(setup: PrintSetup, log: Path) -> ServeProcess:
    env = {
        "PRINTSRV_HOME": str(setup.installation.env.home),
        "PRINTSRV_DATABASE_URL": setup.installation.env.database_url,
        "PRINTSRV_SECRET_KEY": TEST_SECRET,
    }
    return ServeProcess(env, "--no-access-log", log=log).start()


def print_rows(setup: PrintSetup) -> tuple[list[AccountTrx], list[AccountTrx]]:
    """The PRINT_OUT ledger rows: charges, and reversals of them (refunds)."""
    with setup.installation.db.read() as session:
        rows = list(
            session.scalars(select(AccountTrx).where(AccountTrx.trx_type == TrxType.PRINT_OUT))
        )
    return (
        [r for r in rows if r.reversal_of_id is None],
        [r for r in rows if r.reversal_of_id is not None],
    )


@pytest.mark.parametrize(
    ("cups_ends_it", "final", "balance", "refunds"),
    [
        ("completes", "completed", "9.75", 0),
        ("cancels", "canceled", "10.00", 1),
    ],
)
def test_a_new_server_process_finishes_the_job_of_a_killed_one_exactly_once(
    printing_setup: PrintSetup,  # noqa: F811
    stopped_printer: str,
    tmp_path: Path,
    cups_ends_it: str,
    final: str,
    balance: str,
    refunds: int,
) -> None:
    setup = printing_setup
    # Arrange: a server process prints to the stopped queue; CUPS keeps the job pending.
    first = serve(setup, tmp_path / "first.log")
    try:
        url = f"http://127.0.0.1:{first.port}"
        response = upload(url, setup.auth, "a.pdf", pdf_bytes(1), queue="slow")
        assert response.status_code == 200, f"{response.text}\n{first.output()}"
        assert response.json()["status"] == "printing"
        [job] = setup.jobs()
        assert job.state == "submitted" and job.cups_job_id is not None
        assert setup.balance() == Decimal("9.75")

        # Act: the process dies at once, mid-job, with no chance to tidy up.
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        assert first.process.wait(10) == -signal.SIGKILL
    finally:
        first.stop()
    assert setup.jobs()[0].state == "submitted"  # nobody is left to look at it

    second = serve(setup, tmp_path / "second.log")
    try:
        if cups_ends_it == "completes":
            setup.cups.set_enabled(stopped_printer, True)
        else:
            subprocess.run(
                ["cancel", "-h", setup.cups.server, str(job.cups_job_id)],
                check=True,
                capture_output=True,
            )
        finished = setup.wait_job(job.id, timeout=FINISH_TIMEOUT)
        # Assert: the new process's tracker recorded CUPS' verdict ...
        assert finished.state == final, second.output()
        assert finished.cups_state == final
        # ... and the rounds after it (every 0.25 s) change nothing.
        settled = print_rows(setup)
        time.sleep(1.0)
        assert [r.id for rows in print_rows(setup) for r in rows] == [
            r.id for rows in settled for r in rows
        ]
    finally:
        second.stop()
    charges, reversals = print_rows(setup)
    assert len(charges) == 1 and abs(charges[0].amount) == Decimal("0.25")
    assert len(reversals) == refunds
    if refunds:
        assert reversals[0].reversal_of_id == charges[0].id
        assert finished.refund_trx_id == reversals[0].id
    else:
        assert finished.refund_trx_id is None
    assert finished.charge_trx_id == charges[0].id
    assert setup.balance() == Decimal(balance)

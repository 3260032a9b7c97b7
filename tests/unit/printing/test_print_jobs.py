"""Print jobs and the tracker against a private cupsd: charged once, refunded exactly once,
whatever the trackers do (two at once, one that dies holding a lease, one that comes back)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from cupsd import FAIL_MESSAGE, PrivateCups
from printing_support import (
    PrintSetup,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
)
from sqlalchemy import func, select, update

from financial.schema import AccountTrx
from printsrv.documents.store import sha256_of
from printsrv.people.models import User
from printsrv.platform.models import utcnow
from printsrv.platform.uploads import Upload
from printsrv.printing import queues
from printsrv.printing.context import PrintContext
from printsrv.printing.history import user_prints
from printsrv.printing.intake import Accepted, accept_upload
from printsrv.printing.jobs import (
    JobOutcome,
    finish_job,
    in_thread,
    look_at_job,
    record_verdicts,
    submit_job,
)
from printsrv.printing.models import PrintJob
from printsrv.printing.tracker import Tracker


def route(setup: PrintSetup, queue: str, printer: str) -> None:
    with setup.installation.db.transaction() as session:
        queues.add_queue(session, queue, printer=printer)


def print_through(setup: PrintSetup, queue: str, tmp_path: Path, pages: int = 1) -> Accepted:
    """Upload a PDF to ``queue`` the way the REST handler does, without a server."""
    work = tmp_path / f"work-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    path = work / "upload"
    path.write_bytes(pdf_bytes(pages))
    with setup.installation.db.read() as session:
        user = session.scalar(select(User).where(User.user_name == setup.user))
    assert user is not None
    document = Upload(
        fields={"queue": queue},
        path=path,
        file_name="a.pdf",
        size=path.stat().st_size,
        sha256=sha256_of(path),
    )
    context = PrintContext.of(setup.installation)
    return asyncio.run(
        accept_upload(context, user=user, upload=document, client_host="127.0.0.1", work_dir=work)
    )


def only_job(setup: PrintSetup) -> PrintJob:
    (job,) = setup.jobs()
    return job


def refunds(setup: PrintSetup) -> int:
    with setup.installation.db.read() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(AccountTrx)
                .where(AccountTrx.reversal_of_id.is_not(None))
            )
            or 0
        )


def make_due(setup: PrintSetup, **values: object) -> None:
    """Make every job due for a tracker look now (and set ``values``)."""
    with setup.installation.db.transaction() as session:
        session.execute(
            update(PrintJob).values(next_poll_at=utcnow() - timedelta(seconds=1), **values)
        )


async def follow_job(
    context: PrintContext,
    *,
    job_id: int,
    state: str,
    cups_job_id: int | None,
    submitted_at: datetime | None,
    owner: str,
) -> JobOutcome:
    """What Tracker.step does with one job it claimed, as tracker ``owner``: look, record."""
    verdict = await look_at_job(
        context, job_id=job_id, state=state, cups_job_id=cups_job_id, submitted_at=submitted_at
    )
    await in_thread(record_verdicts, context.installation.db, [verdict], owner)
    return verdict.outcome()


def wait_cups_final(setup: PrintSetup, cups_job_id: int) -> str:
    context = PrintContext.of(setup.installation)
    for _ in range(500):
        status = context.cups.job_state_sync(cups_job_id)
        if status.final:
            return status.state
        threading.Event().wait(0.02)
    raise AssertionError(f"CUPS job {cups_job_id} not final")


@pytest.fixture
def failing(printing_setup: PrintSetup) -> PrintSetup:  # noqa: F811
    """A queue routed to the always-failing printer, priced 0.50 a side."""
    printing_setup.set_cost("fail", "0.50")
    route(printing_setup, "broken", "fail")
    return printing_setup


def test_a_print_is_charged_when_submitted(failing: PrintSetup, tmp_path: Path) -> None:
    accepted = print_through(failing, "broken", tmp_path)
    assert accepted.status == "printing" and accepted.cost == Decimal("0.50")
    job = only_job(failing)
    assert job.state == "submitted" and job.cups_job_id is not None
    assert job.charge_trx_id is not None and job.refund_trx_id is None
    assert failing.balance() == Decimal("9.50")


def test_finishing_is_exactly_once_when_many_workers_race(
    failing: PrintSetup, tmp_path: Path
) -> None:
    print_through(failing, "broken", tmp_path)
    job = only_job(failing)
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        with failing.installation.db.transaction() as session:
            results.append(finish_job(session, job.id, "aborted", "device failure"))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 5 + [True]
    assert refunds(failing) == 1
    assert failing.balance() == Decimal("10.00")


def test_two_trackers_seeing_the_same_failure_refund_once(
    failing: PrintSetup, tmp_path: Path
) -> None:
    print_through(failing, "broken", tmp_path)
    job = only_job(failing)
    assert wait_cups_final(failing, job.cups_job_id) == "aborted"
    context = PrintContext.of(failing.installation)

    async def both() -> list[str]:
        # Both look at the job as if each held it: the lease is bypassed on purpose.
        outcomes = await asyncio.gather(
            *(
                follow_job(
                    context,
                    job_id=job.id,
                    state="submitted",
                    cups_job_id=job.cups_job_id,
                    submitted_at=job.submitted_at,
                    owner=owner,
                )
                for owner in ("tracker-a", "tracker-b")
            )
        )
        return [o.state for o in outcomes]

    assert asyncio.run(both()) == ["aborted", "aborted"]
    assert refunds(failing) == 1
    assert failing.balance() == Decimal("10.00")
    finished = only_job(failing)
    assert finished.state == "aborted" and finished.refund_trx_id is not None


def test_a_restarted_tracker_takes_over_and_the_old_one_changes_nothing(
    failing: PrintSetup, tmp_path: Path
) -> None:
    print_through(failing, "broken", tmp_path)
    job = only_job(failing)
    wait_cups_final(failing, job.cups_job_id)
    first = Tracker(failing.installation, owner="first")
    claimed = first._claim(utcnow() + timedelta(seconds=1))  # past its first poll time
    assert [c.id for c in claimed] == [job.id]  # and then "first" dies holding the lease
    second = Tracker(failing.installation, owner="second")
    assert asyncio.run(second.step()) == []  # the lease keeps it off
    make_due(failing, lease_until=utcnow() - timedelta(seconds=1))
    (outcome,) = asyncio.run(second.step())
    assert outcome.state == "aborted"
    # The first tracker wakes up and finishes what it had claimed: nothing happens.
    stale = claimed[0]
    context = PrintContext.of(failing.installation)
    asyncio.run(
        follow_job(
            context,
            job_id=stale.id,
            state=stale.state,
            cups_job_id=stale.cups_job_id,
            submitted_at=stale.submitted_at,
            owner="first",
        )
    )
    assert refunds(failing) == 1
    assert failing.balance() == Decimal("10.00")
    assert asyncio.run(Tracker(failing.installation).step()) == []


def test_a_queued_job_whose_submitter_died_is_failed_and_refunded(
    failing: PrintSetup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def dies(*args: object, **kwargs: object) -> None:
        raise SystemExit("the server stopped while submitting")

    monkeypatch.setattr("printsrv.printing.intake.submit_job", dies)
    with pytest.raises(SystemExit):
        print_through(failing, "broken", tmp_path)
    job = only_job(failing)
    assert job.state == "queued" and failing.balance() == Decimal("9.50")
    tracker = Tracker(failing.installation)
    assert asyncio.run(tracker.step()) == []  # the submitter's lease still runs
    make_due(failing, lease_until=utcnow() - timedelta(seconds=1))
    (outcome,) = asyncio.run(tracker.step())
    assert outcome.state == "failed"
    assert "before the job reached CUPS" in only_job(failing).message
    assert failing.balance() == Decimal("10.00")


def test_a_submission_that_lands_after_the_job_was_given_up_is_cancelled(
    printing_setup: PrintSetup,  # noqa: F811
    tmp_path: Path,
) -> None:
    setup = printing_setup
    setup.cups.add_queue("hold", "null")
    setup.cups.set_enabled("hold", False)  # keeps jobs pending, so there is one to cancel
    try:
        setup.sync()
        setup.set_cost("hold", "0.20")
        route(setup, "held-up", "hold")
        print_through(setup, "held-up", tmp_path)
        job = only_job(setup)
        with setup.installation.db.transaction() as session:
            assert finish_job(session, job.id, "failed", "given up")
        context = PrintContext.of(setup.installation)
        outcome = asyncio.run(
            submit_job(
                context,
                job_id=job.id,
                printer="hold",
                pdf_path=str(context.store.path_for(job.document.pdf_sha256)),
                title="again",
                options={},
                user_name=setup.user,
            )
        )
        assert outcome.state == "failed" and "cancelled" in outcome.message
        assert context.cups.job_state_sync(outcome.cups_job_id).state == "canceled"
    finally:
        setup.cups.remove_queue("hold")
    assert refunds(setup) == 1


def test_cups_unreachable_while_tracking_waits_and_never_refunds_blindly(
    printing_setup: PrintSetup,  # noqa: F811
    tmp_path: Path,
) -> None:
    from support import set_config

    setup = printing_setup
    own = PrivateCups(prefix="printsrv-restart-").start()
    try:
        own.add_queue("sink", "null")
        set_config(setup.installation, {"cups.server": own.server, "cups.timeout-secs": "2"})
        setup.sync()
        setup.set_cost("sink", "0.10")
        route(setup, "flaky", "sink")
        print_through(setup, "flaky", tmp_path)
        job = only_job(setup)
        own.stop()
        tracker = Tracker(setup.installation)
        make_due(setup)
        (outcome,) = asyncio.run(tracker.step())
        assert outcome.state == "submitted" and "waiting for CUPS" in outcome.message
        assert only_job(setup).poll_failures == 1 and refunds(setup) == 0
        own.start()  # CUPS keeps its job history across a restart
        make_due(setup)
        for _ in range(100):
            outcomes = asyncio.run(tracker.step())
            if outcomes and outcomes[0].state != "submitted":
                break
            threading.Event().wait(0.05)
            make_due(setup)
        assert only_job(setup).state == "completed"
        assert job.cups_job_id == only_job(setup).cups_job_id
    finally:
        own.close()
    assert refunds(setup) == 0
    assert setup.balance() == Decimal("9.90")


def test_the_user_sees_why_a_print_failed(failing: PrintSetup, tmp_path: Path) -> None:
    accepted = print_through(failing, "broken", tmp_path)
    job = only_job(failing)
    wait_cups_final(failing, job.cups_job_id)
    make_due(failing)
    asyncio.run(Tracker(failing.installation).step())
    with failing.installation.db.read() as session:
        (view,) = user_prints(session, job.user_id)
    assert view.document_id == accepted.document_id
    assert (view.printer, view.state, view.refunded) == ("fail", "aborted", True)
    assert FAIL_MESSAGE in view.reason
    assert view.cost == Decimal("0.50") and view.finished is not None

"""A print's state over REST: ``status`` and ``job`` in the document log (admin list and
entry, the user's own list), after the contract's fields, over a real socket against a
private cupsd, on both back-ends (issue 14, item 12); and a job that changes state is never
hidden behind a cached page of the log (PostgreSQL caches the log's pages)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cupsd import FAIL_MESSAGE
from printing_support import (
    ADMIN,
    PrintSetup,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    upload,
)
from sqlalchemy import select
from support import LiveServer, wait_until

from printsrv.documents.models import Document
from printsrv.printing import queues

CONTRACT = ["id", "ext_id", "type", "title", "created", "store"]


@pytest.fixture
def server(printing_setup: PrintSetup) -> Iterator[LiveServer]:  # noqa: F811
    live = LiveServer(printing_setup.installation).start()
    yield live
    live.stop()


def add_queue(setup: PrintSetup, name: str, printer: str) -> None:
    with setup.installation.db.transaction() as session:
        queues.add_queue(session, name, printer=printer, ipp_options={})


def admin(server: LiveServer, path: str, **params: str) -> Any:
    response = httpx.get(f"{server.url}/restful/v1{path}", params=params, auth=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def own(server: LiveServer, setup: PrintSetup, **params: str) -> Any:
    response = httpx.get(f"{server.url}/restful/v1/user/documents", params=params, auth=setup.auth)
    assert response.status_code == 200, response.text
    return response.json()


def print_id_of(setup: PrintSetup, document_id: int) -> int:
    with setup.installation.db.read() as session:
        return session.scalars(select(Document.id).where(Document.source_id == document_id)).one()


def test_a_completed_print_shows_its_job_everywhere(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    setup.set_cost("capture", "0.10")
    add_queue(setup, "lab", "capture")
    held = upload(server.url, setup.auth, "held.pdf", pdf_bytes(1)).json()["id"]
    response = upload(
        server.url, setup.auth, "report.pdf", pdf_bytes(3), queue="lab", ext_id="rep-1",
        ipp_options=json.dumps({"copies": "2", "sides": "two-sided-long-edge"}),
    )  # fmt: skip
    assert response.status_code == 200, response.text
    document_id = response.json()["id"]
    job = setup.wait_job(setup.jobs()[0].id)
    assert job.state == "completed"
    print_id = print_id_of(setup, document_id)

    expected_job = {
        "printer": "capture",
        "state": "completed",
        "cups_job_id": job.cups_job_id,
        "pages": 3,
        "copies": 2,
        "sheets": 4,
        "cost": "0.600000",
        "refund": "0.000000",
        "reason": "",
    }
    views = [
        admin(server, f"/documents/{print_id}"),
        admin(server, f"/documents/{document_id}"),  # the upload shows its (latest) print
        admin(server, "/documents/ext_id=rep-1"),
        *admin(server, "/documents", type="print"),
        *own(server, setup, type="print"),
    ]
    for view in views:
        assert list(view)[:6] == CONTRACT  # the contract's fields first, unchanged
        assert view["status"] == "completed"
        shown = dict(view["job"])
        assert shown.pop("finished") is not None
        assert shown == expected_job
    assert views[0]["type"] == "print" and views[0]["ext_id"] == "rep-1"
    assert views[1]["type"] == "in" and views[1]["store"] is True
    # A held document has not printed: no status, no job.
    for view in (admin(server, f"/documents/{held}"), *own(server, setup, type="in")[1:]):
        assert "status" not in view and "job" not in view


def test_a_failed_print_shows_why_and_its_refund(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    setup.set_cost("fail", "0.50")
    add_queue(setup, "broken", "fail")
    response = upload(server.url, setup.auth, "a.pdf", pdf_bytes(2), queue="broken")
    assert response.json()["status"] == "printing"
    job = setup.wait_job(setup.jobs()[0].id)
    assert job.state == "aborted"
    for view in (
        admin(server, f"/documents/{response.json()['id']}"),
        own(server, setup, type="print")[0],
    ):
        assert view["status"] == "aborted"
        assert view["job"]["cost"] == view["job"]["refund"] == "1.000000"
        assert FAIL_MESSAGE in view["job"]["reason"]


def test_a_print_cups_refused_is_failed(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    setup.cups.add_queue("refusing", "null")
    try:
        setup.sync()
        add_queue(setup, "closed", "refusing")
        setup.cups.set_accepting("refusing", False)
        response = upload(server.url, setup.auth, "a.pdf", pdf_bytes(1), queue="closed")
    finally:
        setup.cups.remove_queue("refusing")
    assert response.json()["status"] == "failed"
    shown = admin(server, f"/documents/{response.json()['id']}")
    assert shown["status"] == "failed" and shown["job"]["cups_job_id"] is None
    assert shown["job"]["reason"] == response.json()["error"]


def test_a_job_state_change_is_never_hidden_by_a_cached_page(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    cache = setup.installation.document_log
    if setup.installation.db.backend == "postgresql":
        wait_until(lambda: cache.listening, timeout=10)
    setup.cups.add_queue("paused", "null")
    setup.cups.set_enabled("paused", False)  # accepts jobs, keeps them pending
    try:
        setup.sync()
        add_queue(setup, "slow", "paused")
        response = upload(server.url, setup.auth, "a.pdf", pdf_bytes(1), queue="slow")
        assert response.json()["status"] == "printing"
        (job,) = setup.jobs()
        waiting = admin(server, "/documents", type="print")
        assert waiting[0]["status"] in ("pending", "held", "stopped"), waiting
        assert waiting[0]["job"]["finished"] is None
        # The page is read again, from the cache where there is one.
        assert admin(server, "/documents", type="print")[0]["status"] == waiting[0]["status"]
        if setup.installation.db.backend == "postgresql":
            assert len(cache) >= 1, "the page should have been cached"
        setup.cups.set_enabled("paused", True)
        assert setup.wait_job(job.id, timeout=20).state == "completed"
    finally:
        setup.cups.remove_queue("paused")
    # The tracker's update of the job emptied the cache: the page shows what CUPS said.
    done = admin(server, "/documents", type="print")
    assert done[0]["status"] == "completed" and done[0]["job"]["finished"] is not None
    assert own(server, setup, type="print")[0]["status"] == "completed"

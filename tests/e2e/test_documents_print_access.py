"""A printer's group access lists over a real socket, against a private cupsd: a refused user's
upload to a routed queue and release are 403 with JSON, charge nothing and send nothing to
CUPS; an allowed user prints."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from printing_support import (
    PrintSetup,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    stored_files,
    upload,
)
from sqlalchemy import func, select
from support import LiveServer

from financial.schema import AccountTrx
from printsrv.documents.models import Document
from printsrv.people import users
from printsrv.printing import access, queues

PRINTER = "capture"


@pytest.fixture
def server(printing_setup: PrintSetup) -> Iterator[LiveServer]:  # noqa: F811
    """The live server, printing on `capture` at 0.10 a side through the routed queue lab."""
    printing_setup.set_cost(PRINTER, "0.10")
    with printing_setup.installation.db.transaction() as session:
        queues.add_queue(session, "lab", printer=PRINTER, ipp_options={})
        users.add_group(session, "staff")
        users.add_group(session, "banned")
    live = LiveServer(printing_setup.installation).start()
    yield live
    live.stop()


def grant(setup: PrintSetup, group: str, scope: str) -> None:
    with setup.installation.db.transaction() as session:
        access.grant(session, PRINTER, group, scope)


def join(setup: PrintSetup, group: str) -> None:
    with setup.installation.db.transaction() as session:
        users.add_member(session, group, setup.user)


def captured(setup: PrintSetup) -> list[Path]:
    """The jobs the capture queue has received (the session's cupsd: earlier tests' too)."""
    directory = setup.cups.capture_dir(PRINTER)
    return sorted(directory.glob("job-*.env")) if directory.exists() else []


def count(setup: PrintSetup, table: type) -> int:
    with setup.installation.db.read() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def assert_refused(response: httpx.Response, why: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["succes"] is False
    assert body["error"].startswith(f"User 'janet' may not print on printer '{PRINTER}': ")
    assert why in body["error"]


def release(server: LiveServer, setup: PrintSetup, document_id: int) -> httpx.Response:
    return httpx.post(
        f"{server.url}/restful/v1/documents/{document_id}/print",
        auth=setup.auth,
        data={"printer": PRINTER},
        timeout=60,
    )


def test_a_denied_user_can_neither_upload_to_the_printer_nor_release_to_it(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    held = upload(server.url, setup.auth, "held.pdf", pdf_bytes(2))
    assert held.json()["status"] == "held", "the inbox has no printer, so no access list"
    document_id = held.json()["id"]
    grant(setup, "banned", "DENY")
    join(setup, "banned")
    before = (captured(setup), stored_files(setup.installation), count(setup, AccountTrx))

    routed = upload(server.url, setup.auth, "a.pdf", pdf_bytes(1), queue="lab")
    assert_refused(routed, "group 'banned' is denied there")
    assert_refused(release(server, setup, document_id), "group 'banned' is denied there")

    assert setup.jobs() == []
    assert setup.balance() == Decimal("10.00")
    assert (captured(setup), stored_files(setup.installation), count(setup, AccountTrx)) == before
    assert count(setup, Document) == 1, "only the held upload is logged"

    # Off the DENY list, the same release prints and is charged once.
    with setup.installation.db.transaction() as session:
        access.revoke(session, PRINTER, "banned")
    released = release(server, setup, document_id)
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "printing"
    job = setup.wait_job(setup.jobs()[0].id)
    assert job.state == "completed", job.message
    assert setup.balance() == Decimal("9.80")
    assert len(captured(setup)) == len(before[0]) + 1


def test_with_an_allow_list_only_its_members_print(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    grant(setup, "staff", "ALLOW")
    before, ledger_rows = captured(setup), count(setup, AccountTrx)

    refused = upload(server.url, setup.auth, "a.pdf", pdf_bytes(1), queue="lab")
    assert_refused(refused, "only members of the groups allowed there may print")
    assert setup.jobs() == [] and setup.balance() == Decimal("10.00")
    assert count(setup, Document) == 0 and count(setup, AccountTrx) == ledger_rows
    assert captured(setup) == before

    join(setup, "staff")
    printed = upload(server.url, setup.auth, "a.pdf", pdf_bytes(1), queue="lab")
    assert printed.status_code == 200, printed.text
    assert printed.json()["status"] == "printing" and printed.json()["cost"] == "0.100000"
    job = setup.wait_job(setup.jobs()[0].id)
    assert job.state == "completed", job.message
    assert setup.balance() == Decimal("9.90")
    assert len(captured(setup)) == len(before) + 1

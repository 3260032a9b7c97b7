"""Idempotency-Key on POST /restful/v1/documents/print and /documents/<id>/print, over a real
socket against a private cupsd, on both back-ends (issue 14, item 2).

A retry with the same key and the same request gets the first answer (``Idempotent-Replayed:
true``) and nothing is converted, logged, charged or printed again; the same key with another
request is a 409 that changes nothing; releasing a held document again on purpose (no key,
or another key) still prints it again.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from cupsd import PrivateCups
from printing_support import (
    PrintSetup,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
)
from sqlalchemy import func, select
from support import LiveServer

from financial.schema import AccountTrx
from printsrv.accounts.models import IdempotencyKey
from printsrv.documents.models import Document
from printsrv.printing import intake, queues, rules
from printsrv.printing.models import PrintJob, RuledPrint

KEY = "Idempotency-Key"


@pytest.fixture
def server(printing_setup: PrintSetup) -> Iterator[LiveServer]:  # noqa: F811
    live = LiveServer(printing_setup.installation).start()
    yield live
    live.stop()


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every document the server converts (the server runs in this process)."""
    seen: list[Path] = []
    real = intake.convert

    async def counting(source: Path, *args: Any, **kwargs: Any) -> Any:
        seen.append(source)
        return await real(source, *args, **kwargs)

    monkeypatch.setattr(intake, "convert", counting)
    return seen


def cups_jobs(cups: PrivateCups) -> int:
    """How many jobs the cupsd has seen, finished ones included (it is shared by the session:
    compare counts)."""
    listing = subprocess.run(
        ["lpstat", "-h", cups.server, "-W", "all", "-o"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return len(listing.stdout.splitlines())


@dataclass(frozen=True)
class Counts:
    """What a print leaves behind: log entries, jobs, ledger rows, CUPS jobs, stored keys."""

    documents: int
    jobs: int
    ledger: int
    cups: int
    keys: int


def counts(setup: PrintSetup) -> Counts:
    with setup.installation.db.read() as session:

        def count(table: Any) -> int:
            return int(session.scalar(select(func.count()).select_from(table)) or 0)

        return Counts(
            count(Document), count(PrintJob), count(AccountTrx), cups_jobs(setup.cups),
            count(IdempotencyKey),
        )  # fmt: skip


def add_queue(setup: PrintSetup, name: str, printer: str | None) -> None:
    with setup.installation.db.transaction() as session:
        queues.add_queue(session, name, printer=printer, ipp_options={})


def upload(
    server: LiveServer,
    auth: tuple[str, str],
    content: bytes,
    *,
    key: str | None = None,
    name: str = "report.pdf",
    **fields: str,
) -> httpx.Response:
    headers = {KEY: key} if key is not None else {}
    return httpx.post(
        f"{server.url}/restful/v1/documents/print",
        auth=auth,
        files={"file": (name, content)},
        data=fields,
        headers=headers,
        timeout=60,
    )


def release(
    server: LiveServer, setup: PrintSetup, document_id: int, key: str | None = None, **form: str
) -> httpx.Response:
    headers = {KEY: key} if key is not None else {}
    return httpx.post(
        f"{server.url}/restful/v1/documents/{document_id}/print",
        auth=setup.auth,
        data=form or {"printer": "capture"},
        headers=headers,
        timeout=60,
    )


def refused(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["succes"] is False
    return str(body["error"])


# --- uploads -------------------------------------------------------------------------------------


def test_a_retried_upload_prints_and_charges_once_and_is_not_converted_again(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    conversions: list[Path],
) -> None:
    setup = printing_setup
    setup.set_cost("capture", "0.10")
    add_queue(setup, "lab", "capture")
    content = pdf_bytes(3)
    before = counts(setup)

    first = upload(server, setup.auth, content, key="phone-7f3a", queue="lab", ext_id="r-1")
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "printing" and first.json()["cost"] == "0.300000"
    assert "Idempotent-Replayed" not in first.headers
    job = setup.wait_job(setup.jobs()[0].id)
    assert job.state == "completed"
    after_first = counts(setup)
    assert after_first.documents == before.documents + 2  # the upload and its print
    assert after_first.jobs == before.jobs + 1
    assert after_first.cups == before.cups + 1
    assert len(conversions) == 1

    # The phone timed out and sends the very same request again (the ext_id too, which
    # without the key would be a 409 "already used").
    retry = upload(server, setup.auth, content, key="phone-7f3a", queue="lab", ext_id="r-1")
    assert retry.status_code == 200
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.content == first.content
    assert counts(setup) == after_first
    assert len(conversions) == 1, "a retry must not convert the document again"
    assert setup.balance() == Decimal("9.70")


def test_the_same_key_for_another_upload_is_409_and_changes_nothing(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    conversions: list[Path],
) -> None:
    setup = printing_setup
    add_queue(setup, "lab", "capture")
    content = pdf_bytes(1)
    first = upload(server, setup.auth, content, key="k-1", queue="lab")
    assert first.status_code == 200, first.text
    setup.wait_job(setup.jobs()[0].id)
    before = counts(setup)
    others = [
        {"content": pdf_bytes(2)},  # other bytes
        {"content": content, "name": "other-name.pdf"},  # another title
        {"content": content, "queue": "webservice"},  # another queue
        {"content": content, "queue": "lab", "ipp_options": '{"copies":"2"}'},  # more fields
    ]
    for other in others:
        fields = {"queue": "lab", **other}
        response = upload(server, setup.auth, key="k-1", **fields)  # type: ignore[arg-type]
        assert "'k-1' was already used for a different request" in refused(response, 409)
    assert counts(setup) == before
    assert len(conversions) == 1
    # The first request with its key still gets its own answer.
    again = upload(server, setup.auth, content, key="k-1", queue="lab")
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"


def test_a_held_upload_is_held_once(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    before = counts(setup)
    content = pdf_bytes(2)  # one file: reportlab stamps every PDF it makes differently
    first = upload(server, setup.auth, content, key="hold-1")
    retry = upload(server, setup.auth, content, key="hold-1")
    assert first.status_code == retry.status_code == 200
    assert first.json()["status"] == "held"
    assert retry.content == first.content and retry.headers["Idempotent-Replayed"] == "true"
    after = counts(setup)
    assert (after.documents, after.jobs, after.ledger) == (
        before.documents + 1, before.jobs, before.ledger,
    )  # fmt: skip


def test_a_refusal_is_kept_for_the_key_as_the_money_endpoints_keep_theirs(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    setup.set_balance("0.05")
    setup.set_cost("capture", "0.10")
    add_queue(setup, "lab", "capture")
    before = counts(setup)
    content = pdf_bytes(1)
    first = upload(server, setup.auth, content, key="poor-1", queue="lab")
    assert "costs 0.100000" in refused(first, 402)
    setup.set_balance("5.00")  # one ledger row
    retry = upload(server, setup.auth, content, key="poor-1", queue="lab")
    assert retry.status_code == 402 and retry.content == first.content
    assert retry.headers["Idempotent-Replayed"] == "true"
    after = counts(setup)
    assert (after.documents, after.jobs, after.cups) == (before.documents, 0, before.cups)
    assert after.ledger == before.ledger + 1  # only the top-up
    # A new key is a new request: now it prints.
    fresh = upload(server, setup.auth, pdf_bytes(1), key="poor-2", queue="lab")
    assert fresh.status_code == 200 and fresh.json()["status"] == "printing"


def test_the_stored_answer_is_the_final_one_when_cups_refuses_the_job(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    setup.cups.add_queue("refusing", "null")
    try:
        setup.sync()
        setup.set_cost("refusing", "0.20")
        add_queue(setup, "closed", "refusing")
        setup.cups.set_accepting("refusing", False)  # CUPS refuses the job at submission
        content = pdf_bytes(1)
        first = upload(server, setup.auth, content, key="closed-1", queue="closed")
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "failed" and first.json()["cost"] == "0.000000"
        before = counts(setup)
        retry = upload(server, setup.auth, content, key="closed-1", queue="closed")
    finally:
        setup.cups.remove_queue("refusing")
    # Not the "printing" stored with the charge: the answer CUPS' refusal made.
    assert retry.content == first.content and retry.headers["Idempotent-Replayed"] == "true"
    assert counts(setup).documents == before.documents
    assert setup.balance() == Decimal("10.00")  # charged once, refunded once


def test_two_uploads_with_one_key_at_once_print_once(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    setup.set_cost("capture", "0.10")
    add_queue(setup, "lab", "capture")
    content = pdf_bytes(2)
    before = counts(setup)
    answers: list[httpx.Response] = []
    start = threading.Barrier(2)

    def send() -> None:
        start.wait()
        answers.append(upload(server, setup.auth, content, key="race-1", queue="lab"))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert answers[0].content == answers[1].content
    assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == ["", "true"]
    setup.wait_job(setup.jobs()[0].id)
    after = counts(setup)
    assert (after.documents, after.jobs, after.cups) == (
        before.documents + 2, before.jobs + 1, before.cups + 1,
    )  # fmt: skip
    assert setup.balance() == Decimal("9.80")


def test_an_upload_a_rule_refuses_sent_twice_at_once_is_logged_once(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The refusal used to be logged first and its answer stored afterwards, in a transaction
    # of its own: two requests with one key, both past the check for a stored answer while
    # their PDFs converted, each logged a refused print. Now the key is claimed with the log
    # entry, as for a hold or a print: the second waits for it and replays the answer.
    setup = printing_setup
    add_queue(setup, "lab", "capture")
    rules.add_rule(
        setup.installation.db, name="no-reports", scope="queue:lab", condition="pages>1",
        action="refuse", message="One page here",
    )  # fmt: skip
    # Both conversions wait for each other (the server runs in this process), so both
    # requests are past the check for a stored answer before either is refused.
    real, converting = intake.convert, []

    async def together(source: Path, *args: Any, **kwargs: Any) -> Any:
        converting.append(source)
        for _ in range(1000):  # 10 s at most: a missing second request fails below
            if len(converting) >= 2:
                break
            await asyncio.sleep(0.01)
        return await real(source, *args, **kwargs)

    monkeypatch.setattr(intake, "convert", together)
    content = pdf_bytes(2)
    before = counts(setup)
    answers: list[httpx.Response] = []

    def send() -> None:
        answers.append(upload(server, setup.auth, content, key="refused-1", queue="lab"))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [a.status_code for a in answers] == [422, 422], [a.text for a in answers]
    assert answers[0].content == answers[1].content
    assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == ["", "true"]
    # And once more, after both: replayed, nothing logged.
    retry = upload(server, setup.auth, content, key="refused-1", queue="lab")
    assert retry.content == answers[0].content and retry.headers["Idempotent-Replayed"] == "true"
    after = counts(setup)
    assert (after.documents, after.jobs, after.ledger, after.keys) == (
        before.documents + 1, before.jobs, before.ledger, before.keys + 1,
    )  # fmt: skip
    with setup.installation.db.read() as session:
        assert session.scalars(select(RuledPrint.state)).all() == ["refused"]


def test_a_malformed_request_is_not_kept_so_its_correction_may_use_the_key(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    add_queue(setup, "lab", "capture")
    content = pdf_bytes(1)
    before = counts(setup)
    bad = upload(server, setup.auth, content, key="fix-1", queue="lab", ipp_options='{"x": "1"}')
    assert "'x'" in refused(bad, 400)
    unsupported = upload(
        server, setup.auth, content, key="fix-1", queue="lab", ipp_options='{"sides": "three"}'
    )
    refused(unsupported, 400)
    assert counts(setup) == before  # nothing kept, not even the key
    good = upload(server, setup.auth, content, key="fix-1", queue="lab")
    assert good.status_code == 200 and good.json()["status"] == "printing"
    assert "Idempotent-Replayed" not in good.headers


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "two words"])
def test_a_malformed_key_is_400_before_anything_happens(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    conversions: list[Path],
    key: str,
) -> None:
    setup = printing_setup
    before = counts(setup)
    response = httpx.post(
        f"{server.url}/restful/v1/documents/print",
        auth=setup.auth,
        files={"file": ("a.pdf", pdf_bytes(1))},
        headers=[(KEY, key.encode())],
    )
    assert "Idempotency-Key must be 1 to 255 visible ASCII characters" in refused(response, 400)
    document_id = upload(server, setup.auth, pdf_bytes(1)).json()["id"]
    held = counts(setup)
    on_release = httpx.post(
        f"{server.url}/restful/v1/documents/{document_id}/print",
        auth=setup.auth,
        data={"printer": "capture"},
        headers=[(KEY, key.encode())],
    )
    refused(on_release, 400)
    assert counts(setup) == held
    assert held.documents == before.documents + 1 and len(conversions) == 1


def test_wrong_credentials_with_a_key_are_401_and_store_nothing(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    before = counts(setup)
    response = upload(server, (setup.user, "0" * 36), pdf_bytes(1), key="k")
    refused(response, 401)
    assert counts(setup) == before


# --- releases ------------------------------------------------------------------------------------


def test_a_retried_release_prints_once_and_other_keys_or_none_print_again(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    setup.set_cost("capture", "0.10")
    document_id = upload(server, setup.auth, pdf_bytes(1)).json()["id"]
    before = counts(setup)

    first = release(server, setup, document_id, key="rel-1")
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "printing"
    setup.wait_job(setup.jobs()[-1].id)
    once = counts(setup)
    assert (once.jobs, once.cups) == (before.jobs + 1, before.cups + 1)
    # The same release again, the printer now given in the query instead of the form:
    # the same request as the service reads it.
    retry = httpx.post(
        f"{server.url}/restful/v1/documents/{document_id}/print?printer=capture",
        auth=setup.auth,
        headers={KEY: "rel-1"},
    )
    assert retry.status_code == 200 and retry.content == first.content
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert counts(setup) == once

    # The same key for another release: 409, nothing printed.
    other = release(server, setup, document_id, key="rel-1", printer="null")
    assert "'rel-1' was already used" in refused(other, 409)
    assert counts(setup) == once

    # Printing it again on purpose stays allowed: another key, or none, prints again.
    assert release(server, setup, document_id, key="rel-2").status_code == 200
    assert release(server, setup, document_id).status_code == 200
    assert release(server, setup, document_id).status_code == 200
    for job in setup.jobs():
        setup.wait_job(job.id)
    after = counts(setup)
    assert (after.jobs, after.cups) == (once.jobs + 3, once.cups + 3)
    assert setup.balance() == Decimal("9.60")


def test_a_key_of_one_user_is_not_another_users(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    from printsrv.people import users

    setup = printing_setup
    with setup.installation.db.transaction() as session:
        users.add_user(session, "rijk")
        rijk = ("rijk", users.issue_uuid(session, "rijk", hasher=setup.installation.hasher))
    mine = upload(server, setup.auth, pdf_bytes(1), key="shared-key")
    theirs = upload(server, rijk, pdf_bytes(2), key="shared-key")
    assert mine.status_code == theirs.status_code == 200
    assert mine.json()["id"] != theirs.json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers
    # ... and rijk cannot release janet's document, with or without a key.
    document_id = mine.json()["id"]
    before = counts(setup)
    for key in ("rijk-1", None):
        headers = {KEY: key} if key else {}
        response = httpx.post(
            f"{server.url}/restful/v1/documents/{document_id}/print",
            auth=rijk,
            data={"printer": "capture"},
            headers=headers,
        )
        assert "not in your inbox" in refused(response, 404)
    after = counts(setup)
    assert (after.documents, after.jobs, after.ledger, after.cups) == (
        before.documents, before.jobs, before.ledger, before.cups,
    )  # fmt: skip

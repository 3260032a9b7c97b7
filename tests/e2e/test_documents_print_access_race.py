"""Printer access taken away while a print is on its way (after the early check, before the
charge) refuses the print: nothing is charged, logged, stored or sent to CUPS (issue 21).

The early check runs before converting, which takes seconds; the charge follows. A hook
wrapped around the step between them (the conversion of an upload, the planning of a
release) denies the user the printer in a transaction of its own, as an admin on another
machine would at that moment. The rest is real: the server over a socket, the private cupsd.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

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
from printsrv.printing import access, intake, queues

PRINTER = "capture"


@pytest.fixture
def server(printing_setup: PrintSetup) -> Iterator[LiveServer]:  # noqa: F811
    """The live server, printing on `capture` at 0.10 a side through the routed queue lab;
    janet is in the group `banned`, which is on no list yet."""
    setup = printing_setup
    setup.set_cost(PRINTER, "0.10")
    with setup.installation.db.transaction() as session:
        queues.add_queue(session, "lab", printer=PRINTER, ipp_options={})
        users.add_group(session, "banned")
        users.add_member(session, "banned", setup.user)
    live = LiveServer(setup.installation).start()
    yield live
    live.stop()


def deny_first(setup: PrintSetup, step: Callable[..., Any]) -> Callable[..., Any]:
    """`step`, preceded (once) by putting `banned` on the printer's DENY list."""
    done = False

    def deny() -> None:
        nonlocal done
        if not done:
            done = True
            with setup.installation.db.transaction() as session:
                access.grant(session, PRINTER, "banned", "DENY")

    if step is intake.convert:

        async def convert_after_denying(*args: Any, **kwargs: Any) -> Any:
            deny()
            return await step(*args, **kwargs)

        return convert_after_denying

    def after_denying(*args: Any, **kwargs: Any) -> Any:
        deny()
        return step(*args, **kwargs)

    return after_denying


def captured(setup: PrintSetup) -> list[Path]:
    directory = setup.cups.capture_dir(PRINTER)
    return sorted(directory.glob("job-*.env")) if directory.exists() else []


def state(setup: PrintSetup) -> tuple[object, ...]:
    """What a refused print must leave as it was."""
    with setup.installation.db.read() as session:
        documents = session.scalar(select(func.count()).select_from(Document))
        ledger_rows = session.scalar(select(func.count()).select_from(AccountTrx))
    return (
        captured(setup),
        stored_files(setup.installation),
        documents,
        ledger_rows,
        setup.balance(),
        len(setup.jobs()),
    )


def assert_denied(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert "group 'banned' is denied there" in response.json()["error"]


def test_an_upload_whose_access_goes_during_conversion_is_not_charged(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup = printing_setup
    before = state(setup)
    monkeypatch.setattr(intake, "convert", deny_first(setup, intake.convert))

    assert_denied(upload(server.url, setup.auth, "a.pdf", pdf_bytes(2), queue="lab"))
    assert state(setup) == before
    assert setup.balance() == Decimal("10.00")


def test_a_release_whose_access_goes_before_the_charge_is_not_charged(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup = printing_setup
    held = upload(server.url, setup.auth, "held.pdf", pdf_bytes(2))
    assert held.json()["status"] == "held", held.text
    before = state(setup)
    monkeypatch.setattr(intake, "plan_print", deny_first(setup, intake.plan_print))

    released = httpx.post(
        f"{server.url}/restful/v1/documents/{held.json()['id']}/print",
        auth=setup.auth,
        data={"printer": PRINTER},
        timeout=60,
    )
    assert_denied(released)
    assert state(setup) == before


def test_with_access_unchanged_the_same_print_is_charged_once(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    printed = upload(server.url, setup.auth, "a.pdf", pdf_bytes(2), queue="lab")
    assert printed.status_code == 200, printed.text
    assert printed.json()["status"] == "printing"
    assert setup.balance() == Decimal("9.80")

"""The user's page lists their prints: where each went, how it ended, and why it failed."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import httpx
import pytest
from cupsd import FAIL_MESSAGE
from printing_support import (
    PrintSetup,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    upload,
)
from support import LiveServer

from printsrv.people import users
from printsrv.printing import queues


@pytest.fixture
def server(printing_setup: PrintSetup) -> Iterator[LiveServer]:  # noqa: F811
    live = LiveServer(printing_setup.installation).start()
    yield live
    live.stop()


def test_failed_print_shows_its_reason_and_refund_on_the_page(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    setup.set_cost("fail", "0.50")
    with setup.installation.db.transaction() as session:
        queues.add_queue(session, "broken", printer="fail", ipp_options={})
        users.set_password(session, setup.user, "page-password")
    response = upload(server.url, setup.auth, "Thesis draft.pdf", pdf_bytes(1), queue="broken")
    assert response.status_code == 200, response.text
    assert setup.wait_job(setup.jobs()[0].id).state == "aborted"

    with contextlib.closing(httpx.Client()) as browser:
        login = browser.get(f"{server.url}/user")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)[1]  # type: ignore[index]
        browser.post(
            f"{server.url}/user/login",
            follow_redirects=True,
            data={"username": setup.user, "password": "page-password", "csrf_token": csrf},
        )
        page = browser.get(f"{server.url}/user").text
    prints = page[page.index('id="prints"') :]
    assert "Thesis draft" in prints
    assert "aborted" in prints and FAIL_MESSAGE in prints
    assert "(refunded)" in prints

"""Releasing a held document from the user's page: the form goes through the REST release's
service, against a private cupsd, over a real socket (and once in a real browser)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from cupsd import parse_backend_options
from printing_support import (
    PrintSetup,
    hold,
    print_charges,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    set_config_live,
)
from support import LiveServer
from web_support import release_in_browser

from printsrv.documents.models import Document
from printsrv.errors import Conflict
from printsrv.people import users
from printsrv.printing import access, intake
from printsrv.printing.context import PrintContext
from printsrv.printing.intake import Accepted
from printsrv.web.views import CSRF_REFUSED, RELEASE_DONE

PASSWORD = "release-password"


@pytest.fixture
def server(printing_setup: PrintSetup) -> Iterator[LiveServer]:  # noqa: F811
    with printing_setup.installation.db.transaction() as session:
        users.set_password(session, printing_setup.user, PASSWORD)
    printing_setup.set_cost("capture", "0.10")
    live = LiveServer(printing_setup.installation).start()
    yield live
    live.stop()


def log_in(server: LiveServer, user: str, password: str = PASSWORD) -> httpx.Client:
    client = httpx.Client()
    page = client.get(f"{server.url}/user")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]  # type: ignore[index]
    client.post(
        f"{server.url}/user/login",
        follow_redirects=True,
        data={"username": user, "password": password, "csrf_token": csrf},
    )
    return client


def release_form(page: str, document_id: int) -> str | None:
    """The release form of one document on the page, or None when it has none."""
    match = re.search(rf'<form[^>]*id="release-{document_id}".*?</form>', page, re.S)
    return match[0] if match else None


def page_csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]  # type: ignore[index]


def test_a_held_document_is_released_from_the_page_printed_and_charged_once(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    document_id = hold(server, setup)
    with contextlib.closing(log_in(server, setup.user)) as browser:
        page = browser.get(f"{server.url}/user").text
        form = release_form(page, document_id)
        assert form is not None, page
        assert '<option value="capture">' in form and 'name="copies"' in form

        released = browser.post(
            f"{server.url}/user/release",
            follow_redirects=False,
            data={
                "csrf_token": page_csrf(form),
                "document": str(document_id),
                "printer": "capture",
                "copies": "2",
                "sides": "two-sided-long-edge",
                "colour": "monochrome",
            },
        )
        assert released.status_code == 303, released.text
        assert released.headers["location"] == "/user?done=release"
        job = setup.wait_job(setup.jobs()[0].id)
        assert job.state == "completed"
        env = setup.cups.read_env("capture", job.cups_job_id)
        assert env["COPIES"] == "2"
        options = parse_backend_options(env["OPTIONS"])
        assert options["sides"] == "two-sided-long-edge"
        assert options["print-color-mode"] == "monochrome"

        after = browser.get(f"{server.url}/user?done=release").text
        assert RELEASE_DONE in after
        assert release_form(after, document_id) is None  # printed: no longer held

        # A second post of the same form (a reload, a double click) prints nothing more.
        repeat = {"csrf_token": page_csrf(form), "document": str(document_id), "printer": "capture"}
        again = browser.post(f"{server.url}/user/release", data=repeat)
        assert again.status_code == 409
        assert "already been released" in again.text
    assert len(setup.jobs()) == 1
    assert print_charges(setup) == 1
    assert setup.balance() == Decimal("9.60")  # 2 pages x 2 copies x 0.10


def test_a_bad_csrf_token_is_refused_and_nothing_is_charged(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    document_id = hold(server, setup)
    with contextlib.closing(log_in(server, setup.user)) as browser:
        for token in ("", "forged-token-0123456789"):
            refused = browser.post(
                f"{server.url}/user/release",
                data={"csrf_token": token, "document": str(document_id), "printer": "capture"},
            )
            assert refused.status_code == 403
            assert CSRF_REFUSED in refused.text
        # Without a session, the form leads to the login page and does nothing.
        anonymous = httpx.post(
            f"{server.url}/user/release",
            data={"csrf_token": "x", "document": str(document_id), "printer": "capture"},
        )
        assert anonymous.status_code == 303
    assert setup.jobs() == []
    assert print_charges(setup) == 0
    assert setup.balance() == Decimal("10.00")


def test_another_users_document_is_refused_like_a_missing_one(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    janets = hold(server, setup)
    with setup.installation.db.transaction() as session:
        users.add_user(session, "rijk", password="rijk-password")
    with contextlib.closing(log_in(server, "rijk", "rijk-password")) as browser:
        page = browser.get(f"{server.url}/user").text
        assert release_form(page, janets) is None
        refused = browser.post(
            f"{server.url}/user/release",
            data={"csrf_token": page_csrf(page), "document": str(janets), "printer": "capture"},
        )
        missing = browser.post(
            f"{server.url}/user/release",
            data={"csrf_token": page_csrf(page), "document": "999999", "printer": "capture"},
        )
    assert refused.status_code == missing.status_code == 404
    assert f"Document {janets} is not in your inbox" in refused.text
    assert 'id="release-problem"' in refused.text  # on the user's page, not a bare error page
    assert setup.jobs() == []
    assert print_charges(setup) == 0


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"copies": "0"}, 400, "Copies &#39;0&#39; is not a number from 1 to 99"),
        ({"sides": "three-sided"}, 400, "Sides &#39;three-sided&#39; is not one of"),
        ({"printer": "nope"}, 404, "Printer &#39;nope&#39; is not known"),
        ({"printer": ""}, 400, "Choose a printer"),
    ],
)
def test_bad_options_are_shown_on_the_page_and_nothing_is_charged(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    fields: dict[str, str],
    status: int,
    message: str,
) -> None:
    setup = printing_setup
    document_id = hold(server, setup)
    with contextlib.closing(log_in(server, setup.user)) as browser:
        page = browser.get(f"{server.url}/user").text
        data = {"csrf_token": page_csrf(page), "document": str(document_id), "printer": "capture"}
        refused = browser.post(f"{server.url}/user/release", data={**data, **fields})
    assert refused.status_code == status
    assert message in refused.text
    assert release_form(refused.text, document_id) is not None  # still held, try again
    assert setup.jobs() == [] and print_charges(setup) == 0


def test_insufficient_balance_and_expiry_are_explained(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    document_id = hold(server, setup)
    setup.set_balance("0.05")
    with contextlib.closing(log_in(server, setup.user)) as browser:
        page = browser.get(f"{server.url}/user").text
        data = {"csrf_token": page_csrf(page), "document": str(document_id), "printer": "capture"}
        poor = browser.post(f"{server.url}/user/release", data=data)
        assert poor.status_code == 402
        assert "Insufficient balance: the print costs 0.200000" in poor.text

        set_config_live(setup.installation, {"release.hold-hours": "1"})
        with setup.installation.db.transaction() as session:
            document = session.get(Document, document_id)
            assert document is not None
            document.created_at = document.created_at - timedelta(hours=2)
        setup.set_balance("10.00")
        expired = browser.post(f"{server.url}/user/release", data=data)
        assert expired.status_code == 409
        assert "expired from the inbox" in expired.text
        assert release_form(expired.text, document_id) is None
    assert setup.jobs() == [] and print_charges(setup) == 0


def test_a_person_releases_a_document_by_clicking_the_button(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    chromium: Any,
) -> None:
    from selenium.webdriver.common.by import By

    setup = printing_setup
    document_id = hold(server, setup, "Lab report.pdf", pages=1)
    driver = chromium
    notice = release_in_browser(
        driver,
        server.url,
        user=setup.user,
        password=PASSWORD,
        document_id=document_id,
        printer="capture",
        copies=3,
    )
    assert notice == RELEASE_DONE
    assert not driver.find_elements(By.ID, f"release-{document_id}")
    assert "Lab report.pdf" in driver.find_element(By.ID, "prints").text
    job = setup.wait_job(setup.jobs()[0].id)
    assert job.state == "completed"
    assert setup.cups.read_env("capture", job.cups_job_id)["COPIES"] == "3"
    assert print_charges(setup) == 1
    assert setup.balance() == Decimal("9.70")  # 1 page x 3 copies x 0.10


def test_a_printer_the_users_group_is_denied_is_not_offered(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    document_id = hold(server, setup)
    with contextlib.closing(log_in(server, setup.user)) as browser:
        offered = release_form(browser.get(f"{server.url}/user").text, document_id)
        assert offered is not None and '<option value="capture">' in offered
        with setup.installation.db.transaction() as session:
            users.add_group(session, "interns")
            users.add_member(session, "interns", setup.user)
            access.grant(session, "capture", "interns", "DENY")
        refused = release_form(browser.get(f"{server.url}/user").text, document_id)
        assert refused is not None and '<option value="capture">' not in refused


def test_the_release_buttons_once_rule_is_checked_inside_the_charging_transaction(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    # Straight at the service, past the page's early check: this is the check two racing
    # clicks meet, taking turns on the document's row lock.
    setup = printing_setup
    document_id = hold(server, setup)
    context = PrintContext.of(setup.installation)
    with setup.installation.db.read() as session:
        user = users.find_user(session, setup.user)

    def release() -> Accepted:
        return asyncio.run(
            intake.release(
                context,
                user=user,
                document_id=document_id,
                printer_name="capture",
                ipp_options=None,
                client_host="127.0.0.1",
                once=True,
            )
        )

    assert release().status != "failed"
    with pytest.raises(Conflict, match="already been released"):
        release()
    assert print_charges(setup) == 1
    assert len(setup.jobs()) == 1

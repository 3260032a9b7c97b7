"""Print rules on the user's page: a release from the web app meets the same rules as the
REST one (refused with the rule's message, held for approval, printed grey or two-sided),
and the page shows what became of a held document."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from cupsd import parse_backend_options
from printing_support import (
    ADMIN,
    PrintSetup,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    upload,
)
from sqlalchemy import func, select
from support import LiveServer

from financial.schema import AccountTrx, TrxType
from printsrv.people import users
from printsrv.printing import rules
from printsrv.web.views import WAITING_FOR_APPROVAL

PASSWORD = "rules-password"


@pytest.fixture
def server(printing_setup: PrintSetup) -> Iterator[LiveServer]:  # noqa: F811
    with printing_setup.installation.db.transaction() as session:
        users.set_password(session, printing_setup.user, PASSWORD)
    printing_setup.set_cost("capture", "0.10", per_side_duplex="0.05")
    live = LiveServer(printing_setup.installation).start()
    yield live
    live.stop()


def log_in(server: LiveServer, user: str) -> httpx.Client:
    client = httpx.Client()
    page = client.get(f"{server.url}/user")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]  # type: ignore[index]
    client.post(
        f"{server.url}/user/login",
        follow_redirects=True,
        data={"username": user, "password": PASSWORD, "csrf_token": csrf},
    )
    return client


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]  # type: ignore[index]


def approval_text(page: str, document_id: int) -> str | None:
    """What the page says a rule decided about the document ("" parts unescaped)."""
    match = re.search(rf'<span class="approval" id="approval-{document_id}">(.*?)</span>', page)
    return html.unescape(match[1]).removeprefix(" · ") if match else None


def hold(server: LiveServer, setup: PrintSetup, pages: int) -> int:
    response = upload(server.url, setup.auth, "doc.pdf", pdf_bytes(pages))
    assert response.json()["status"] == "held", response.text
    return int(response.json()["id"])


def release(browser: httpx.Client, server: LiveServer, document_id: int, **form: str):
    page = browser.get(f"{server.url}/user").text
    data = {"csrf_token": csrf_of(page), "document": str(document_id), "printer": "capture"}
    return browser.post(f"{server.url}/user/release", data={**data, **form})


def charges(setup: PrintSetup) -> int:
    with setup.installation.db.read() as session:
        return session.scalar(
            select(func.count()).select_from(AccountTrx).where(
                AccountTrx.trx_type == TrxType.PRINT_OUT
            )
        )  # fmt: skip


def test_a_refused_release_shows_the_rules_message_and_charges_nothing(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    rules.add_rule(setup.installation.db, name="no-copies", scope="all", condition="copies>2",
                   action="refuse", message="At most 2 copies, please")  # fmt: skip
    document_id = hold(server, setup, 1)
    with contextlib.closing(log_in(server, setup.user)) as browser:
        refused = release(browser, server, document_id, copies="3")
        assert refused.status_code == 422, refused.text
        assert 'id="release-problem">At most 2 copies, please</p>' in refused.text
        assert approval_text(refused.text, document_id) == "refused: At most 2 copies, please"
        # Refused, not gone: the document can be released within the rules.
        assert release(browser, server, document_id, copies="2").status_code == 303
    assert charges(setup) == 1
    assert setup.wait_job(setup.jobs()[0].id).state == "completed"


def test_a_held_release_waits_for_approval_and_the_page_shows_the_outcome(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    rules.add_rule(
        setup.installation.db,
        name="big",
        scope="printer:capture",
        condition="pages>3",
        action="hold",
        message="Big jobs need a teacher",
    )
    approved_id = hold(server, setup, 4)
    denied_id = hold(server, setup, 5)
    with contextlib.closing(log_in(server, setup.user)) as browser:
        waiting = release(browser, server, approved_id)
        assert waiting.status_code == 200, waiting.text
        assert f"{WAITING_FOR_APPROVAL}: Big jobs need a teacher" in waiting.text
        assert approval_text(waiting.text, approved_id) == (
            "waiting for approval: Big jobs need a teacher"
        )
        assert f'id="release-{approved_id}"' not in waiting.text  # no second release
        again = release(browser, server, approved_id)
        assert again.status_code == 409 and "waiting for approval" in again.text
        assert release(browser, server, denied_id).status_code == 200
        assert setup.jobs() == [] and charges(setup) == 0

        url = f"{server.url}/restful/v1/documents"
        assert httpx.post(f"{url}/{approved_id}/approve", auth=ADMIN).status_code == 200
        denied = httpx.post(f"{url}/{denied_id}/deny", auth=ADMIN, data={"comment": "Too long"})
        assert denied.status_code == 200, denied.text
        page = browser.get(f"{server.url}/user").text
        assert approval_text(page, approved_id) == "approved"
        assert approval_text(page, denied_id) == "denied: Too long"
    assert setup.wait_job(setup.jobs()[0].id).state == "completed"
    assert charges(setup) == 1
    assert setup.balance() == Decimal("9.60")  # 4 grey one-sided pages at 0.10


def test_a_web_release_is_printed_two_sided_and_grey_as_the_rules_say(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    db = setup.installation.db
    rules.add_rule(db, name="duplex", scope="all", condition="sheets>1", action="duplex")
    rules.add_rule(db, name="grey", scope="all", condition="type:application/pdf",
                   action="grayscale")  # fmt: skip
    document_id = hold(server, setup, 4)
    with contextlib.closing(log_in(server, setup.user)) as browser:
        released = release(browser, server, document_id, sides="one-sided", colour="color")
        assert released.status_code == 303, released.text
    job = setup.wait_job(setup.jobs()[0].id)
    assert job.state == "completed", job.message
    options = parse_backend_options(setup.cups.read_env("capture", job.cups_job_id)["OPTIONS"])
    assert options["sides"] == "two-sided-long-edge"
    assert options["print-color-mode"] == "monochrome"
    assert job.cost == Decimal("0.200000")  # 4 duplex grey sides at 0.05

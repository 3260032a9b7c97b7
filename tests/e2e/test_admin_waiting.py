"""The console's "Waiting for approval" page in a real browser (headless Chromium), checked
by axe-core: a hold rule holds two REST uploads on the live server, the admin sees both,
denies one with a comment (the user sees "denied" and the comment, nothing charged) and
approves the other (printed on the private cupsd, charged once); a decision another admin
made meanwhile is shown as the service's refusal. On SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from admin_support import AdminBrowser, assert_accessible, submit_and_wait
from printing_support import (
    PrintSetup,
    pdf_bytes,
    print_charges,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    upload,
)

from printsrv.printing import approval, queues, rules
from printsrv.web.admin.pages import CSRF_REFUSED


def user_documents(url: str, setup: PrintSetup) -> dict[int, dict[str, Any]]:
    response = httpx.get(f"{url}/restful/v1/user/documents?type=in", auth=setup.auth)
    assert response.status_code == 200, response.text
    return {entry["id"]: entry for entry in response.json()}


def test_the_admin_denies_with_a_comment_and_approves_from_the_waiting_list(
    printing_setup: PrintSetup,  # noqa: F811 - first, so the console's admin is set after it
    admin_browser: AdminBrowser,
) -> None:
    setup = printing_setup
    url = admin_browser.server.url
    setup.set_cost("capture", "0.10")
    with setup.installation.db.transaction() as session:
        queues.add_queue(session, "lab", printer="capture")
    rules.add_rule(
        setup.installation.db, name="big-jobs", scope="all", condition="pages>3", action="hold",
        message="Big job: a teacher approves",
    )  # fmt: skip
    driver = admin_browser.open("/admin/printing/waiting")
    assert admin_browser.find("#no-waiting").text == "No print is waiting for approval."
    ids = []
    for name, pages in (("thesis.pdf", 4), ("poster.pdf", 5)):
        held = upload(url, setup.auth, name, pdf_bytes(pages), queue="lab")
        assert held.json()["status"] == "waiting", held.text
        ids.append(held.json()["id"])
    thesis, poster = ids

    # Reached from the Printing section's navigation.
    admin_browser.open("/admin/printing")
    submit_and_wait(driver, admin_browser.find("nav.subnav a[href='/admin/printing/waiting']"))
    listed = [e.get_attribute("data-waiting") for e in admin_browser.find_all("li[data-waiting]")]
    assert listed == [str(thesis), str(poster)]
    entry = admin_browser.find(f"li[data-waiting='{thesis}']").text
    for shown in ("thesis.pdf", setup.user, "capture", "lab", "0.40", "big-jobs", "Big job"):
        assert shown in entry, (shown, entry)
    assert_accessible(driver)

    poster_entry = f"li[data-waiting='{poster}']"
    admin_browser.find(f"{poster_entry} textarea[name=comment]").send_keys("Not course work")
    submit_and_wait(driver, admin_browser.find(f"{poster_entry} form.deny-form button"))
    notice = admin_browser.find("#waiting-notice").text
    assert notice == f"Document {poster} denied; nothing charged."
    assert admin_browser.find_all(poster_entry) == []
    assert_accessible(driver)
    denied = user_documents(url, setup)[poster]
    assert denied["status"] == "denied"
    assert denied["approval"]["comment"] == "Not course work"
    assert print_charges(setup) == 0 and setup.jobs() == []

    submit_and_wait(
        driver, admin_browser.find(f"li[data-waiting='{thesis}'] form.approve-form button")
    )
    notice = admin_browser.find("#waiting-notice").text
    assert notice == f"Document {thesis} approved: printing on capture, charged 0.40."
    assert admin_browser.find("#no-waiting").is_displayed()
    [job] = setup.jobs()
    assert setup.wait_job(job.id).state == "completed"
    assert print_charges(setup) == 1
    assert setup.balance() == Decimal("9.60")
    assert user_documents(url, setup)[thesis]["approval"]["state"] == "approved"


def test_a_forged_form_or_a_print_decided_meanwhile_is_refused_and_nothing_changes(
    printing_setup: PrintSetup,  # noqa: F811
    admin_browser: AdminBrowser,
) -> None:
    setup = printing_setup
    url = admin_browser.server.url
    with setup.installation.db.transaction() as session:
        queues.add_queue(session, "lab", printer="capture")
    rules.add_rule(
        setup.installation.db, name="hold-all", scope="all", condition="pages>0", action="hold"
    )
    held = upload(url, setup.auth, "memo.pdf", pdf_bytes(1), queue="lab").json()["id"]
    entry = f"li[data-waiting='{held}']"

    # A deny form without the session's CSRF token (as a forged one would be) is refused.
    driver = admin_browser.open("/admin/printing/waiting")
    driver.execute_script(
        "document.querySelector(arguments[0]).value = 'y'.repeat(43);",
        f"{entry} form.deny-form input[name=csrf_token]",
    )
    submit_and_wait(driver, admin_browser.find(f"{entry} form.deny-form button"))
    assert CSRF_REFUSED in driver.page_source
    with setup.installation.db.read() as session:
        assert [w.ref for w in approval.list_waiting(session)] == [str(held)]

    driver = admin_browser.open("/admin/printing/waiting")
    button = admin_browser.find(f"{entry} form.approve-form button")
    approval.deny_document(setup.installation, str(held), admin="other", comment="mine")
    submit_and_wait(driver, button)
    problem = admin_browser.find("#waiting-problem").text
    assert problem == f"Document {held} is not waiting for approval"
    assert admin_browser.find("#no-waiting").is_displayed()
    assert_accessible(driver)
    assert print_charges(setup) == 0 and setup.jobs() == []
    assert user_documents(url, setup)[held]["approval"]["comment"] == "mine"

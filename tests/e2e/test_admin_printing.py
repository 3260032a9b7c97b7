"""The console's Printing section in a real browser (headless Chromium), each page checked
by axe-core: printers with their prices (set and cleared) and access lists, queues enabled,
disabled and routed, the document log with its filters, a document's PDF and the picture of
its first page (made by convert-to's own converter). A refused input is shown beside its
field, nothing changed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
from admin_support import AdminBrowser, assert_accessible, submit_and_wait
from selenium.webdriver.support.ui import Select

from printsrv.documents import log
from printsrv.documents.store import PdfStore
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.printing import access, printers, queues
from printsrv.printing.models import Printer
from printsrv.printing.types import PrinterInfo


def stored_document(installation: Installation, owner: str, title: str, tmp_path: Path) -> int:
    """A document of `owner` in the log, its PDF (two pages of text) in the store."""
    from reportlab.pdfgen import canvas

    source = tmp_path / f"{title}.pdf"
    drawing = canvas.Canvas(str(source))
    for words in ("first page words", "second page words"):
        drawing.drawString(72, 720, words)
        drawing.showPage()
    drawing.save()
    size = source.stat().st_size
    stored = PdfStore(installation.env.home).put(source)  # moves the file into the store
    with installation.db.transaction() as session:
        return log.log_upload(
            session,
            user=users.get_user(session, owner),
            title=title,
            pdf=stored,
            pages=2,
            source_type="pdf",
            source_bytes=size,
            source_sha256=stored.sha256,
            client_address="127.0.0.1",
            queue_name="webservice",
            ipp_options="{}",
            ext_id=None,
        ).id


def seed_printing(installation: Installation) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "alice")
        users.add_user(session, "bob")
        users.add_group(session, "staff")
        session.add(Printer(name="hall-laser", state="idle", accepting=True, location="Hall"))
        session.flush()
        printers.set_cost(
            session,
            "hall-laser",
            printers.parse_media_costs(
                {"default": {"one-sided": {"grayscale": "0.10", "color": "0.50"},
                             "two-sided": {"grayscale": "0.08", "color": "0.40"}}}
            ),
        )  # fmt: skip
        access.grant(session, "hall-laser", "staff", "ALLOW")
        queues.add_queue(session, "library", ip_allowed="10.0.0.0/8")


def test_printers_and_queues(installation: Installation, admin_browser: AdminBrowser) -> None:
    seed_printing(installation)
    driver = admin_browser.open("/admin/printing")
    assert_accessible(driver)
    row = admin_browser.find("tr[data-printer=hall-laser]")
    assert "0.10" in row.text and "allow staff" in row.text and "Hall" in row.text
    queue = admin_browser.find("tr[data-queue=library]")
    assert "10.0.0.0/8" in queue.text and "the user's choice" in queue.text

    submit_and_wait(driver, queue.find_element("css selector", "form.inline button"))
    assert admin_browser.find("#printing-notice").text == "Queue library changed."
    assert "disabled" in admin_browser.find("tr[data-queue=library]").text
    with installation.db.read() as session:
        assert not queues.get_queue(session, "library").enabled
    submit_and_wait(driver, admin_browser.find("tr[data-queue=library] form.inline button"))
    with installation.db.read() as session:
        assert queues.get_queue(session, "library").enabled

    # The access lists: a group that does not exist is refused beside the field.
    form = "tr[data-printer=hall-laser] form.access-form"
    admin_browser.find(f"{form} input[name=group]").send_keys("nobody")
    submit_and_wait(driver, admin_browser.find(f"{form} button"))
    assert "nobody" in admin_browser.find(f"{form} .field-error").text
    assert_accessible(driver)
    with installation.db.read() as session:
        assert [a.group for a in access.list_access(session, "hall-laser")] == ["staff"]
    field = admin_browser.find(f"{form} input[name=group]")
    field.clear()
    field.send_keys("staff")
    Select(admin_browser.find(f"{form} select")).select_by_value("DENY")
    submit_and_wait(driver, admin_browser.find(f"{form} button"))
    assert "moved from the ALLOW to the DENY list" in admin_browser.find("#printing-notice").text
    with installation.db.read() as session:
        assert [(a.group, a.scope) for a in access.list_access(session, "hall-laser")] == [
            ("staff", "DENY")
        ]


def test_printer_prices_and_queue_routing(
    installation: Installation, admin_browser: AdminBrowser
) -> None:
    seed_printing(installation)
    with installation.db.transaction() as session:  # as `printer sync` stores it
        printers.store_printer(session, PrinterInfo(
            name="annex-inkjet", state="idle", state_message="", state_reasons=(),
            accepting=True, info="", location="Annex", make_and_model="",
            copies_supported=(1, 99), sides_supported=("one-sided",),
            print_color_mode_supported=("color",), media_supported=(),
            sheet_collate_supported=(), number_up_supported=(1,), page_ranges_supported=False,
            orientation_requested_supported=(), print_quality_supported=(),
            print_scaling_supported=(), defaults=(),
        ))  # fmt: skip

    def prices(printer: str) -> str | None:
        with installation.db.read() as session:
            return printers.get_printer(session, printer).cost_model

    # A bad amount is refused beside its field, and the prices stay as they were.
    before = prices("hall-laser")
    driver = admin_browser.open("/admin/printing")
    form = "tr[data-printer=hall-laser] form.prices-form"
    admin_browser.find(f"{form} input[name=per_side]").send_keys("0.05")
    admin_browser.find(f"{form} input[name=per_side_color]").send_keys("-1")
    submit_and_wait(driver, admin_browser.find(f"{form} button[value=N]"))
    error = admin_browser.find(f"{form} .field-error")
    assert "negative" in error.text
    assert error.get_attribute("id") == admin_browser.find(
        f"{form} input[name=per_side_color]"
    ).get_attribute("aria-describedby")
    assert admin_browser.find(f"{form} input[name=per_side]").get_attribute("value") == "0.05"
    assert_accessible(driver)
    assert prices("hall-laser") == before
    # The refusal's status is 422, as for any form the admin can correct.
    token = admin_browser.find(f"{form} input[name=csrf_token]").get_attribute("value")
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    with httpx.Client(base_url=admin_browser.server.url, cookies=cookies) as client:
        answer = client.post(
            "/admin/printing/prices",
            data={"csrf_token": token, "printer": "hall-laser", "per_side": "ten"},
        )
        assert answer.status_code == 422 and "per_side" in answer.text
        # Without the form's CSRF token nothing is changed.
        forged = client.post("/admin/printing/prices", data={"printer": "hall-laser", "clear": "Y"})
        assert forged.status_code == 403
    assert prices("hall-laser") == before

    # Correct it: per side 0.05 grey, 0.30 colour; the duplex prices fall back to them.
    colour = admin_browser.find(f"{form} input[name=per_side_color]")
    colour.clear()
    colour.send_keys("0.30")
    submit_and_wait(driver, admin_browser.find(f"{form} button[value=N]"))
    assert "hall-laser:" in admin_browser.find("#printing-notice").text
    with installation.db.read() as session:
        model = printers.cost_from_json(printers.get_printer(session, "hall-laser").cost_model)
    assert model is not None
    assert (model.default.one_sided_gray, model.default.one_sided_color) == (
        Decimal("0.05"),
        Decimal("0.30"),
    )
    assert (model.default.two_sided_gray, model.default.two_sided_color) == (
        Decimal("0.05"),
        Decimal("0.30"),
    )
    # Make free: no prices at all.
    submit_and_wait(driver, admin_browser.find(f"{form} button[value=Y]"))
    assert "free" in admin_browser.find("tr[data-printer=hall-laser] .prices").text
    with installation.db.read() as session:
        assert printers.get_printer(session, "hall-laser").cost_model is None

    # Routing: a printer that does not exist is refused beside the field, nothing changed.
    route = "tr[data-queue=library] form.route-form"
    admin_browser.find(f"{route} input[name=printer]").send_keys("no-such-printer")
    submit_and_wait(driver, admin_browser.find(f"{route} button"))
    assert "no-such-printer" in admin_browser.find(f"{route} .field-error").text
    assert_accessible(driver)
    with installation.db.read() as session:
        assert queues.get_queue(session, "library").printer_name is None
    field = admin_browser.find(f"{route} input[name=printer]")
    field.clear()
    field.send_keys("annex-inkjet")
    submit_and_wait(driver, admin_browser.find(f"{route} button"))
    assert admin_browser.find("#printing-notice").text == "Queue library changed."
    assert admin_browser.find("tr[data-queue=library] .route").text == "annex-inkjet"
    with installation.db.read() as session:
        assert queues.get_queue(session, "library").printer_name == "annex-inkjet"
    # Emptied: the queue holds documents in the user's inbox again.
    admin_browser.find(f"{route} input[name=printer]").clear()
    submit_and_wait(driver, admin_browser.find(f"{route} button"))
    with installation.db.read() as session:
        assert queues.get_queue(session, "library").printer_name is None


def test_the_document_log_its_filters_pdf_and_preview(
    installation: Installation, admin_browser: AdminBrowser, tmp_path: Path
) -> None:
    seed_printing(installation)
    minutes = stored_document(installation, "alice", "minutes.pdf", tmp_path)
    stored_document(installation, "bob", "essay.pdf", tmp_path)

    driver = admin_browser.open("/admin/printing/documents")
    assert_accessible(driver)
    titles = [row.text for row in admin_browser.find_all("#documents tbody td:nth-child(4)")]
    assert titles == ["essay.pdf", "minutes.pdf"]

    # One user's documents.
    admin_browser.find("#user").send_keys("alice")
    submit_and_wait(driver, admin_browser.find("#log-filter button"))
    titles = [row.text for row in admin_browser.find_all("#documents tbody td:nth-child(4)")]
    assert titles == ["minutes.pdf"]

    # Bad filters: beside their field.
    admin_browser.open("/admin/printing/documents?from=yesterday")
    assert "not a date" in admin_browser.find("#from-error").text
    assert admin_browser.find("#from").get_attribute("aria-invalid") == "true"
    assert_accessible(driver)
    admin_browser.open("/admin/printing/documents?user=nobody")
    assert "no user" in admin_browser.find("#user-error").text
    admin_browser.open("/admin/printing/documents?from=2000-01-01&to=2000-01-31")
    assert admin_browser.find("#no-documents").text == "No documents match."

    # The preview: a PNG of the first page, shown in the page (the CSP allows it).
    admin_browser.open("/admin/printing/documents?user=alice")
    admin_browser.find(f"tr[data-document='{minutes}'] summary").click()
    image = admin_browser.find(f"tr[data-document='{minutes}'] img")
    driver.execute_script("arguments[0].scrollIntoView()", image)
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", image
        )
    )
    assert driver.execute_script("return arguments[0].naturalWidth", image) == 480

    # The PDF, and both need the console's session.
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    base = admin_browser.server.url
    with httpx.Client(base_url=base, cookies=cookies) as client:
        pdf = client.get(f"/admin/printing/documents/{minutes}/pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert "minutes.pdf" in pdf.headers["content-disposition"]
    with httpx.Client(base_url=base) as stranger:
        for path in ("pdf", "preview.png"):
            answer = stranger.get(f"/admin/printing/documents/{minutes}/{path}")
            assert answer.status_code == 303 and answer.headers["location"] == "/admin/login"

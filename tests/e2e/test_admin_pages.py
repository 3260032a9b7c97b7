"""The admin console's pages in a real browser (headless Chromium), each checked by axe-core:
the dashboard with a month of printing, and the settings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from admin_support import (
    LOW_TONER,
    AdminBrowser,
    assert_accessible,
    seed_dashboard,
    submit_and_wait,
)
from sqlalchemy import select

from printsrv.operations.installation import Installation
from printsrv.platform.models import ConfigProperty

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_dashboard_shows_a_month_of_printing(
    installation: Installation, admin_browser: AdminBrowser, tmp_path: Path
) -> None:
    data = seed_dashboard(installation)

    driver = admin_browser.open("/admin")

    # Totals, and each chart with its table.
    assert admin_browser.find("#total-pages").text == f"{data.pages:,}"
    assert admin_browser.find("#total-spent").text == f"{data.spent:,.2f}"
    for chart in ("#chart-pages", "#chart-spent", "#chart-groups", "#chart-printers"):
        svg = admin_browser.find(chart)
        assert svg.get_attribute("role") == "img"
        assert svg.find_element("css selector", "desc").get_attribute("textContent")
    day_rows = admin_browser.find_all("#pages-table tbody tr")
    assert len(day_rows) == 30
    groups = [
        [cell.get_attribute("textContent") for cell in row.find_elements("tag name", "td")]
        for row in admin_browser.find_all("#groups-table tbody tr")
    ]
    assert groups == [["staff", f"{data.staff_pages:,}"], ["pupils", f"{data.pupils_pages:,}"]]
    printers = [
        row.find_element("tag name", "td").get_attribute("textContent")
        for row in admin_browser.find_all("#printers-top-table tbody tr")
    ]
    assert printers == ["hall-laser", "lab-inkjet"]

    # The remote printer's low ink stands out; the local one says why it shows no levels.
    remote = admin_browser.find("tr[data-printer=lab-inkjet]")
    assert "has-low" in remote.get_attribute("class")
    assert f"{LOW_TONER['name']}: 8% low" in remote.text
    assert "Black toner: 72%" in remote.text
    local = admin_browser.find("tr[data-printer=hall-laser]")
    assert "has-low" not in (local.get_attribute("class") or "")
    assert "CUPS" in local.text  # no CUPS in this test: the note says so

    # What is printing, what failed and why, and the system's status.
    assert "report-" in admin_browser.find("#in-flight").text
    assert "submitted" in admin_browser.find("#in-flight").text
    failures = admin_browser.find("#failures").text
    assert data.failure_reason in failures and "aborted" in failures
    assert admin_browser.find("#system-status").text == "READY"
    assert "None." in admin_browser.find("#batch-jobs").text

    assert_accessible(driver)
    assert driver.execute_script("return document.documentElement.scrollWidth <= innerWidth")

    # The screenshot the README shows, at a laptop's width.
    driver.set_window_size(1280, 1900)
    driver.get(driver.current_url)
    shot = tmp_path / "admin-dashboard.png"
    assert driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("PRINTSRV_SCREENSHOTS") == "docs":
        shutil.copyfile(shot, DOCS / "admin-dashboard.png")


def stored(installation: Installation, name: str) -> ConfigProperty | None:
    with installation.db.read() as session:
        row = session.scalar(select(ConfigProperty).where(ConfigProperty.name == name))
        if row is not None:
            session.expunge(row)
        return row


def test_settings_are_changed_with_their_rules_and_secrets_stay_hidden(
    installation: Installation, admin_browser: AdminBrowser
) -> None:
    driver = admin_browser.open("/admin/settings?q=idle")
    assert_accessible(driver)
    field = admin_browser.find("#setting-web-login-session-idle-mins-value")

    # A value its rule refuses: the reason beside the field, the field marked, nothing saved.
    field.clear()
    field.send_keys("ninety")
    submit_and_wait(driver, admin_browser.find("#setting-web-login-session-idle-mins button"))
    error = admin_browser.find("#setting-web-login-session-idle-mins-error")
    assert "not a whole number" in error.text
    field = admin_browser.find("#setting-web-login-session-idle-mins-value")
    assert field.get_attribute("aria-invalid") == "true"
    assert field.get_attribute("value") == "ninety"
    assert stored(installation, "web-login.session.idle-mins") is None
    assert_accessible(driver)

    # A good value: saved through the properties service, with who changed it.
    field.clear()
    field.send_keys("45")
    submit_and_wait(driver, admin_browser.find("#setting-web-login-session-idle-mins button"))
    assert admin_browser.find("#settings-notice").text == "Saved web-login.session.idle-mins."
    row = stored(installation, "web-login.session.idle-mins")
    assert row is not None and row.value == "45" and row.updated_by == "admin-web:chief"
    assert installation.config.snapshot()["web-login.session.idle-mins"] == 45

    # A secret: typed twice; entries that differ are refused, and it is never shown.
    driver = admin_browser.open("/admin/settings?q=secret-key")
    secret = "a new JSON-RPC key 0123"
    admin_browser.find("#setting-api-jsonrpc-secret-key-value").send_keys(secret)
    admin_browser.find("#setting-api-jsonrpc-secret-key-confirm").send_keys(secret + "!")
    submit_and_wait(driver, admin_browser.find("#setting-api-jsonrpc-secret-key button"))
    assert (
        "The two entries differ" in admin_browser.find("#setting-api-jsonrpc-secret-key-error").text
    )
    assert stored(installation, "api.jsonrpc.secret-key") is None
    assert secret not in driver.page_source

    admin_browser.find("#setting-api-jsonrpc-secret-key-value").send_keys(secret)
    admin_browser.find("#setting-api-jsonrpc-secret-key-confirm").send_keys(secret)
    submit_and_wait(driver, admin_browser.find("#setting-api-jsonrpc-secret-key button"))
    assert installation.config.snapshot()["api.jsonrpc.secret-key"].matches(secret)
    assert secret not in driver.page_source
    assert "(a secret: set)" in admin_browser.find("#setting-api-jsonrpc-secret-key").text


def test_every_section_is_reachable_from_the_navigation_and_accessible(
    admin_browser: AdminBrowser,
) -> None:
    from selenium.webdriver.common.keys import Keys

    # From the keyboard: the first Tab reaches "Skip to content", which leads to the page.
    driver = admin_browser.driver
    driver.find_element("tag name", "body").send_keys(Keys.TAB)
    skip = driver.switch_to.active_element
    assert skip.text == "Skip to content" and skip.get_attribute("href").endswith("#content")
    skip.send_keys(Keys.ENTER)
    assert driver.switch_to.active_element.get_attribute("id") == "content"

    for label, heading in (
        ("People", "People & money"),
        ("Printing", "Printing"),
        ("Reports", "Reports"),
        ("Settings", "Settings"),
        ("Dashboard", "Dashboard"),
    ):
        link = admin_browser.driver.find_element("link text", label)
        submit_and_wait(admin_browser.driver, link)
        assert admin_browser.find("h1").text == heading
        assert admin_browser.find("nav [aria-current=page]").text == label
        # Usable at a phone's width: nothing runs off the side of the window.
        assert driver.execute_script("return document.documentElement.scrollWidth <= innerWidth")
        if label != "Settings":  # the settings page has its own test with axe
            assert_accessible(admin_browser.driver)


def test_a_local_printers_supplies_are_read_from_cups(
    installation: Installation, admin_browser: AdminBrowser, tmp_path: Path
) -> None:
    import asyncio
    import subprocess

    from cupsd import SUPPLIES, PrivateCups
    from support import set_config, wait_until

    from printsrv.printing.context import PrintContext, cups_client
    from printsrv.printing.tracker import sync_from_cups

    with PrivateCups(prefix="printsrv-admin-cupsd-") as cups:
        cups.add_queue("toner-laser", "supplies")
        # The backend reports the supplies while it runs a job, as a printer's does.
        subprocess.run(
            ["lp", "-h", cups.server, "-d", "toner-laser", "/etc/hostname"],
            check=True,
            capture_output=True,
        )
        client = cups_client(cups.server)
        wait_until(lambda: asyncio.run(client.markers("toner-laser")), timeout=15)
        set_config(installation, {"cups.server": cups.server})
        installation.config.refresh()
        asyncio.run(sync_from_cups(PrintContext.of(installation)))

        admin_browser.open("/admin")
        row = admin_browser.find("tr[data-printer=toner-laser]")

        assert f"black: {SUPPLIES['black']}%" in row.text
        assert f"cyan: {SUPPLIES['cyan']}% low" in row.text
        assert "has-low" in row.get_attribute("class")
        assert "remote" not in row.text

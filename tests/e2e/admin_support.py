"""Browser tests of the admin console: a real server, a real headless Chromium, axe-core.

The fixtures reach every test under tests/e2e through tests/e2e/conftest.py:

- `chromium`: headless Chromium from Debian (/usr/bin/chromium, /usr/bin/chromedriver)
  driven by Selenium, at a phone's width (412 px) unless the test resizes it; one process
  per test module (`chromium_process`), without cookies at the start of each test.
- `admin_server`: the real app on a loopback socket (LiveServer) with the REST admin's
  credentials set (ADMIN_NAME / ADMIN_PASSWORD).
- `admin_browser`: an `AdminBrowser` logged in to the console as the REST admin.
- `assert_accessible(driver)`: runs the vendored axe-core (tests/vendor/axe-core) on the
  page and fails with the violations' list when any is serious or critical.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support import LiveServer, require_programs, set_config
from web_support import give_credit

from printsrv.operations.installation import Installation

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js"

ADMIN_NAME = "chief"
ADMIN_PASSWORD = "admin console password 1"

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=412,915",  # a phone's viewport
]


def set_rest_admin(installation: Installation) -> None:
    """The REST admin's credentials, which also open the console."""
    set_config(
        installation,
        {"api.restful.auth.username": ADMIN_NAME, "api.restful.auth.password": ADMIN_PASSWORD},
    )


def set_config_live(installation: Installation, values: dict[str, str]) -> None:
    """Set config properties and refresh the installation's cached config at once: a
    LiveServer serves this same installation, whose refresher would pick the change up
    only a moment later."""
    set_config(installation, values)
    installation.config.refresh()


def _stale_when_detached() -> Any:
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.remote.errorhandler import ErrorHandler

    class DetachedIsStale(ErrorHandler):
        """Chromium's "Node with given id does not belong to the document" (an element of a
        page being replaced, seen under load) raised as what it means: a stale element, which
        selenium's waits (`staleness_of`) and the tests already expect."""

        def check_response(self, response: dict[str, Any]) -> None:
            try:
                super().check_response(response)
            except WebDriverException as error:
                if "does not belong to the document" in str(error.msg):
                    raise StaleElementReferenceException(error.msg) from error
                raise

    return DetachedIsStale()


@pytest.fixture(scope="module")
def chromium_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium (Selenium WebDriver) for a test module: starting one costs
    seconds, and `chromium` gives each test a clean one."""
    require_programs(str(CHROMIUM), str(CHROMEDRIVER))
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path_factory.mktemp("chromium-profile")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # With the driver's path given, Selenium Manager (which would download) never runs.
    service = Service(
        executable_path=str(CHROMEDRIVER), log_output=str(profile.parent / "driver.log")
    )
    driver = webdriver.Chrome(service=service, options=options)
    driver.error_handler = _stale_when_detached()
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def chromium(chromium_process: Any) -> Any:
    """The module's headless Chromium, as new for this test: no cookies (every test's
    server is on 127.0.0.1, and cookies do not care for ports), a phone's window."""
    chromium_process.get("about:blank")
    chromium_process.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chromium_process.set_window_size(412, 915)
    return chromium_process


@pytest.fixture
def admin_server(installation: Installation) -> Iterator[LiveServer]:
    """The real server, with the REST admin's credentials set."""
    set_rest_admin(installation)
    server = LiveServer(installation).start()
    yield server
    server.stop()


@dataclass
class AdminBrowser:
    """A browser logged in to the console of `server`."""

    driver: Any
    server: LiveServer

    def open(self, path: str) -> Any:
        """GET `path` of the server (e.g. "/admin/settings"); returns the driver."""
        self.driver.get(self.server.url + path)
        return self.driver

    def find(self, css: str) -> Any:
        """The one element matching `css` (fails when there is none)."""
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[Any]:
        """Every element matching `css`."""
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))


def log_in(driver: Any, server: LiveServer, user_name: str, password: str) -> None:
    """Fill in and submit the console's log-in form, as a person would."""
    from selenium.webdriver.common.by import By

    driver.get(f"{server.url}/admin/login")
    driver.find_element(By.ID, "username").send_keys(user_name)
    driver.find_element(By.ID, "password").send_keys(password)
    submit_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]"))


def submit_and_wait(driver: Any, button: Any) -> None:
    """Click a form's button and wait until the next page has replaced this one and loaded.

    The old page is marked with a property on its window; the new page's window has none.
    Asking whether an element of the old page went stale (selenium's `staleness_of`) is not
    enough: mid-navigation Chromium may answer "Node with given id does not belong to the
    document" instead of "stale", an error the wait does not expect (seen under load in CI).
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("window.__printsrvLeaving = true;")
    button.click()
    WebDriverWait(driver, 15, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return window.__printsrvLeaving !== true && document.readyState === 'complete';"
        )
    )


@pytest.fixture
def admin_browser(chromium: Any, admin_server: LiveServer) -> AdminBrowser:
    """A browser on the dashboard, logged in as the REST admin."""
    log_in(chromium, admin_server, ADMIN_NAME, ADMIN_PASSWORD)
    assert chromium.current_url == f"{admin_server.url}/admin", chromium.page_source[:2000]
    return AdminBrowser(chromium, admin_server)


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the current page (WCAG 2.x A and AA rules, best practices)."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(JSON.stringify(r.violations)))"
        ".catch(e => done(JSON.stringify({error: String(e)})));"
    )
    violations = json.loads(result)
    assert isinstance(violations, list), f"axe-core failed to run: {violations}"
    return violations


def assert_accessible(driver: Any, *, but_for: tuple[str, ...] = ()) -> None:
    """No serious or critical axe-core violation on the current page, apart from the rules
    named in ``but_for`` (each caller says why it may break one)."""
    bad = [
        v
        for v in axe_violations(driver)
        if v.get("impact") in ("serious", "critical") and v["id"] not in but_for
    ]
    described = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:5])
        for v in bad
    ]
    assert not bad, f"axe-core on {driver.current_url}:\n" + "\n".join(described)


# --- data for the dashboard -------------------------------------------------------------------

LOW_TONER = {"name": "Cyan ink", "type": "ink-cartridge", "level": 8, "color": "#00FFFF"}
FULL_TONER = {"name": "Black toner", "type": "toner", "level": 72, "color": "#000000"}


@dataclass(frozen=True)
class DashboardData:
    """What `seed_dashboard` put in: the totals the dashboard must show."""

    pages: int
    spent: Decimal
    staff_pages: int
    pupils_pages: int
    failure_reason: str


def seed_dashboard(installation: Installation, *, days: int = 30) -> DashboardData:
    """A month of printing: two groups, a local printer and an agent's remote one (whose
    markers say one supply is low), completed jobs on every day with their charges in the
    ledger (through printing's own charge), one failed job with its reason, one in flight.

    Jobs and charges are written as of now, then backdated with an UPDATE to the day they
    stand for: the dashboard reads times, and nothing here can wait a month.
    """
    import json as _json
    from datetime import timedelta

    from sqlalchemy import update

    from financial.schema import AccountTrx as financial_trx
    from printsrv.documents.models import Document
    from printsrv.people import users
    from printsrv.platform.models import utcnow
    from printsrv.printing.charging import charge_print
    from printsrv.printing.models import Printer, PrintJob

    now = utcnow()
    with installation.db.transaction() as session:
        for name, full in (("alice", "Alice Staff"), ("bob", "Bob Pupil")):
            users.add_user(session, name, full_name=full, password="a password 123")
        users.add_group(session, "staff")
        users.add_group(session, "pupils")
        users.add_member(session, "staff", "alice")
        users.add_member(session, "pupils", "bob")
    for name in ("alice", "bob"):
        give_credit(installation, name, "100.00", "Semester credit")
    with installation.db.transaction() as session:
        session.add(Printer(name="hall-laser", state="idle", accepting=True, location="Hall"))
        session.add(
            Printer(
                name="lab-inkjet",
                state="idle",
                accepting=True,
                location="Lab 2 (agent)",
                agent_id=1,
                markers=_json.dumps([FULL_TONER, LOW_TONER]),
            )
        )
        session.flush()
        alice, bob = users.get_user(session, "alice"), users.get_user(session, "bob")
        pages = staff = pupils = 0
        total_spent = Decimal(0)
        job_no = 0

        def job(user, printer: str, n_pages: int, state: str, message: str = "") -> PrintJob:  # type: ignore[no-untyped-def]
            nonlocal job_no
            job_no += 1
            doc = Document(
                doc_type="print",
                user_id=user.id,
                title=f"report-{job_no}.pdf",
                pdf_sha256=f"{job_no:064x}",
                pdf_bytes=1000,
                pages=n_pages,
            )
            session.add(doc)
            session.flush()
            row = PrintJob(
                document_id=doc.id,
                user_id=user.id,
                printer_name=printer,
                pages=n_pages,
                sides=n_pages,
                sheets=n_pages,
                cost=Decimal("0.10") * n_pages,
                state=state,
                message=message,
            )
            session.add(row)
            session.flush()
            return row

        for back in range(days):
            when = now - timedelta(days=back)
            for user, printer, n_pages in (
                (alice, "hall-laser", 3 + back % 5),
                (bob, "lab-inkjet", 2),
            ):
                row = job(user, printer, n_pages, "completed")
                entry = charge_print(
                    session,
                    user_name=user.user_name,
                    amount=row.cost,
                    document_id=row.document_id,
                    comment="print",
                    default_credit_limit=Decimal(1000),
                )
                session.execute(
                    update(financial_trx)
                    .where(financial_trx.id == entry.id)
                    .values(created_at=when)
                )
                row.created_at = row.finished_at = when
                pages += n_pages
                total_spent += row.cost
                if user is alice:
                    staff += n_pages
                else:
                    pupils += n_pages
        failed = job(bob, "hall-laser", 4, "aborted", "Paper jam in tray 2")
        failed.finished_at = now
        # In CUPS as job 4711; not due for the tracker's poll (there is no CUPS here).
        flying = job(alice, "hall-laser", 6, "submitted")
        flying.cups_job_id = 4711
        flying.next_poll_at = now + timedelta(days=1)
    return DashboardData(pages, total_spent, staff, pupils, "Paper jam in tray 2")

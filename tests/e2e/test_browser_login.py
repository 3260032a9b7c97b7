"""A real browser logs in the way an LMS sends it: headless Chromium from Debian, via Selenium.

The LMS page is served from another site (http://localhost:<port>, while printsrv is at
http://127.0.0.1:<port>), so the form post to /user is a true cross-site POST, as it is when
Moodle's SavaPage block hands a student over.
"""

from __future__ import annotations

import html
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support import LiveServer, require_programs
from web_support import accounting_tables, add_person, create_token, enable_ttp, give_credit

from printsrv.operations.installation import Installation
from printsrv.people.logins import LINK_REFUSED

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture(autouse=True)
def _browser_installed() -> None:
    require_programs(str(CHROMIUM), str(CHROMEDRIVER))


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


def lms_page(printsrv_url: str, user_name: str, token: str) -> bytes:
    """What an LMS serves: a course page with a form of two hidden inputs posting to /user."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Course: Printing 101</title></head>
<body>
  <h1>Printing 101</h1>
  <form method="post" action="{html.escape(printsrv_url)}/user">
    <input type="hidden" name="auth_user" value="{html.escape(user_name)}">
    <input type="hidden" name="auth_token" value="{html.escape(token)}">
    <button id="open-printsrv" type="submit">Print with printsrv</button>
  </form>
</body></html>""".encode()


class LmsServer:
    """A one-page web server on loopback standing in for the LMS."""

    def __init__(self) -> None:
        self.page = b""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(outer.page)))
                self.end_headers()
                self.wfile.write(outer.page)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.httpd.server_address[1]}/course"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LmsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def janet(installation: Installation) -> Iterator[str]:
    enable_ttp(installation)
    add_person(installation, "janet", full_name="Janet Jones")
    with accounting_tables(installation):
        give_credit(installation, "janet", "9.26", "Top-up at the library desk")
        yield "janet"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    # With the driver's path given, Selenium Manager (which would download) never runs.
    service = Service(
        executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log")
    )
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def test_browser_follows_the_lms_form_and_sees_the_balance(
    janet: str,
    live_server: LiveServer,
    browser,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    # Arrange: the LMS asks for a token server-to-server and renders the hand-over form.
    token = create_token(live_server, janet)
    with LmsServer() as lms:
        lms.page = lms_page(live_server.url, janet, token)
        browser.get(lms.url)
        browser.save_screenshot(str(tmp_path / "lms-page.png"))

        # Act: the student clicks through.
        browser.find_element(By.ID, "open-printsrv").click()
        balance = WebDriverWait(browser, 15).until(
            expected_conditions.presence_of_element_located((By.ID, "balance"))
        )

        # Assert: their own page, with their balance, in a session cookie the page cannot read.
        assert browser.current_url == f"{live_server.url}/user"
        assert balance.text == "9.26"
        assert balance.get_attribute("data-amount") == "9.260000"
        assert browser.find_element(By.ID, "user-name").text == "Janet Jones"
        assert "Top-up at the library desk" in browser.page_source
        screenshot = tmp_path / "user-page.png"
        assert browser.save_screenshot(str(screenshot))
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        [cookie] = [c for c in browser.get_cookies() if c["name"] == "printsrv_session"]
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Lax"
        assert browser.execute_script("return document.cookie") == ""

        # The same hand-over a second time (back, submit again) no longer logs anyone in.
        browser.delete_all_cookies()
        browser.get(lms.url)
        browser.find_element(By.ID, "open-printsrv").click()
        message = WebDriverWait(browser, 15).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".message"))
        )
        assert message.text == LINK_REFUSED
        assert not browser.find_elements(By.ID, "balance")
        browser.save_screenshot(str(tmp_path / "second-use.png"))

"""The console's Reports section in a real browser (headless Chromium), checked by axe-core:
the transaction report's form, refused parameters beside their field (no job queued), and
a report run as a `report.accounttrx` job whose page follows it (its own script, allowed
by the page's Content-Security-Policy) until the CSV or PDF can be downloaded."""

from __future__ import annotations

import uuid

import httpx
from admin2_support import again_if_detached
from admin_support import AdminBrowser, assert_accessible, submit_and_wait
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import func, select
from web_support import give_credit

from printsrv.jobs.models import Job
from printsrv.operations.installation import Installation
from printsrv.people import users


def jobs_queued(installation: Installation) -> int:
    with installation.db.read() as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def fill(admin_browser: AdminBrowser, **fields: str) -> None:
    def one(name: str, value: str) -> None:
        element = admin_browser.find(f"#{name}")
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)

    for name, value in fields.items():
        again_if_detached(lambda: one(name, value))  # noqa: B023 (called at once)


def download(admin_browser: AdminBrowser) -> httpx.Response:
    """Follow the job's page until its file is listed, then fetch it with the session."""
    driver = admin_browser.driver
    WebDriverWait(driver, 60).until(lambda d: d.find_elements("css selector", "#job-files a"))
    link = admin_browser.find("#job-files a").get_attribute("href")
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    with httpx.Client(cookies=cookies) as client:
        return client.get(link)


def test_an_admin_makes_a_transaction_report(
    installation: Installation, admin_browser: AdminBrowser
) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "janet")
        users.add_user(session, "karl")
    give_credit(installation, "janet", "12.50", "Semester credit for janet")
    give_credit(installation, "karl", "3.00", "Credit for karl")

    driver = admin_browser.open("/admin/reports")
    assert_accessible(driver)

    # Refused parameters: beside their field, and no job.
    fill(admin_browser, account_name="janet", date_from="1 Dec")
    submit_and_wait(driver, admin_browser.find("#report-form button"))
    assert "not a day" in admin_browser.find("#date_from-error").text
    assert admin_browser.find("#date_from").get_attribute("aria-invalid") == "true"
    assert admin_browser.find("#account_name").get_attribute("value") == "janet"
    assert_accessible(driver)
    fill(admin_browser, account_name="nobody", date_from="")
    submit_and_wait(driver, admin_browser.find("#report-form button"))
    assert admin_browser.find("#account_name-error").text
    fill(admin_browser, account_name="janet", zone="Mars", date_from="2000-01-01")
    submit_and_wait(driver, admin_browser.find("#report-form button"))
    assert admin_browser.find("#zone-error").text
    assert jobs_queued(installation) == 0

    # A CSV of janet's rows: the job's page follows it, then offers the file.
    fill(admin_browser, zone="+01", date_from="", trx_type="DEPOSIT")
    submit_and_wait(driver, admin_browser.find("#report-form button"))
    assert "/admin/reports/jobs/" in driver.current_url
    policy = httpx.get(
        driver.current_url, cookies={c["name"]: c["value"] for c in driver.get_cookies()}
    ).headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    csv = download(admin_browser)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "Semester credit for janet" in csv.text and "karl" not in csv.text
    # What the page's script polls (without script, the page reloads itself instead).
    status = httpx.get(
        driver.current_url + "/status",
        cookies={c["name"]: c["value"] for c in driver.get_cookies()},
    ).json()
    assert status == {"state": "done", "progress": 100, "end": True}
    assert_accessible(driver)

    # A PDF of every USER account.
    admin_browser.open("/admin/reports")
    fill(admin_browser, media_type="PDF")
    submit_and_wait(driver, admin_browser.find("#report-form button"))
    pdf = download(admin_browser)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    # The job and its file need the console's session.
    with httpx.Client() as stranger:
        answer = stranger.get(driver.current_url)
        assert answer.status_code == 303 and answer.headers["location"] == "/admin/login"


def test_the_job_page_follows_a_running_report_with_its_script(
    installation: Installation, admin_browser: AdminBrowser
) -> None:
    """A job another server holds (its lease runs for an hour, so this server's runner
    leaves it alone): the page shows its progress, and its script (allowed by the page's
    policy, nothing inline) polls until the job ends, then shows how it ended."""
    from datetime import timedelta

    from printsrv.platform.models import utcnow

    # A key of its own: ended jobs' answers are kept per process, and both back-ends' runs
    # of this test share one.
    key = f"followed-{uuid.uuid4().hex[:12]}"
    now = utcnow()
    with installation.db.transaction() as session:
        session.add(
            Job(
                key=key,
                job_type="report.accounttrx",
                argument="{}",
                owner_kind="admin",
                owner_name="admin-web:chief",
                state="running",
                progress=40,
                attempt=1,
                lease_owner="another-server",
                lease_until=now + timedelta(hours=1),
                started_at=now,
            )
        )
    driver = admin_browser.open(f"/admin/reports/jobs/{key}")
    assert admin_browser.find("#job-progress").get_attribute("value") == "40"
    assert_accessible(driver)

    with installation.db.transaction() as session:
        job = session.get(Job, key)
        assert job is not None
        job.progress = 75
    WebDriverWait(driver, 15).until(
        lambda d: d.find_element("id", "job-progress").get_attribute("value") == "75"
    )
    with installation.db.transaction() as session:
        job = session.get(Job, key)
        assert job is not None
        job.state, job.error_code, job.message = "failed", -1, "The disk is full"
        job.finished_at = job.expires_at = utcnow() + timedelta(hours=1)
    WebDriverWait(driver, 15).until(lambda d: d.find_elements("id", "job-message"))
    assert admin_browser.find("#job-message").text == "The disk is full"

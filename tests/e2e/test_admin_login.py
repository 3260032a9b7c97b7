"""Logging in to the admin console at /admin, over a real socket and in a real browser:
who may (the REST admin, members of `admin.web.group`), from where (the REST allowlist,
TLS off loopback), CSRF on every form, throttling shared by every server, log-out."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from admin_support import (
    ADMIN_NAME,
    ADMIN_PASSWORD,
    assert_accessible,
    log_in,
    set_config_live,
    submit_and_wait,
)
from sqlalchemy import func, select
from support import LiveServer, set_config
from web_support import PASSWORD, add_person

from printsrv.operations.installation import Installation, open_installation
from printsrv.people import users
from printsrv.people.logins import CREDENTIALS_REFUSED
from printsrv.people.models import AdminSession
from printsrv.platform.environment import Environment
from printsrv.web.admin.pages import CSRF_REFUSED

SESSION = "printsrv_admin_session"


def admin_sessions(installation: Installation) -> int:
    with installation.db.read() as session:
        return session.scalar(select(func.count()).select_from(AdminSession)) or 0


def csrf_on(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def console_login(
    client: httpx.Client,
    server: LiveServer,
    user_name: str = ADMIN_NAME,
    password: str = ADMIN_PASSWORD,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Fetch the log-in form, then post it (no redirect followed)."""
    headers = dict(headers or {})
    form = client.get(f"{server.url}/admin/login", headers=headers)
    assert form.status_code == 200, form.text
    csrf = csrf_on(form)
    if headers.get("X-Forwarded-Proto") == "https":
        # The browser speaks https to the proxy and sends the Secure cookie; this client
        # speaks http to the server and would keep it back.
        headers["Cookie"] = f"printsrv_admin_csrf={csrf}"
    return client.post(
        f"{server.url}/admin/login",
        data={"username": user_name, "password": password, "csrf_token": csrf},
        headers=headers,
        follow_redirects=False,
    )


# --- in a browser ------------------------------------------------------------------------------


def test_the_rest_admin_logs_in_sees_the_console_and_logs_out(
    chromium: Any, admin_server: LiveServer, installation: Installation
) -> None:
    from selenium.webdriver.common.by import By

    # The log-in page, unauthenticated, passes axe-core.
    chromium.get(f"{admin_server.url}/admin")
    assert chromium.current_url == f"{admin_server.url}/admin/login"
    assert_accessible(chromium)

    log_in(chromium, admin_server, ADMIN_NAME, ADMIN_PASSWORD)

    assert chromium.current_url == f"{admin_server.url}/admin"
    assert chromium.find_element(By.ID, "admin-name").text == ADMIN_NAME
    nav = chromium.find_element(By.CSS_SELECTOR, "nav[aria-label=Sections]")
    labels = [a.text for a in nav.find_elements(By.TAG_NAME, "a")]
    assert labels == ["Dashboard", "People", "Printing", "Reports", "Settings"]
    current = nav.find_element(By.CSS_SELECTOR, "[aria-current=page]")
    assert current.text == "Dashboard"
    # Nothing wider than the (phone-sized) window: no sideways scrolling.
    assert chromium.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    assert_accessible(chromium)
    [cookie] = [c for c in chromium.get_cookies() if c["name"] == SESSION]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/admin"
    assert admin_sessions(installation) == 1

    submit_and_wait(chromium, chromium.find_element(By.CSS_SELECTOR, "form.logout button"))

    assert chromium.current_url == f"{admin_server.url}/admin/login"
    assert admin_sessions(installation) == 0
    chromium.get(f"{admin_server.url}/admin/settings")
    assert chromium.current_url == f"{admin_server.url}/admin/login"


def test_a_wrong_password_shows_the_form_again_with_the_reason(
    chromium: Any, admin_server: LiveServer
) -> None:
    from selenium.webdriver.common.by import By

    log_in(chromium, admin_server, ADMIN_NAME, "not the password")

    assert chromium.current_url == f"{admin_server.url}/admin/login"
    assert chromium.find_element(By.ID, "login-message").text == CREDENTIALS_REFUSED
    assert chromium.find_element(By.ID, "username").get_attribute("value") == ADMIN_NAME
    assert_accessible(chromium)


# --- who may log in ----------------------------------------------------------------------------


def test_wrong_password_and_unknown_name_look_the_same(admin_server: LiveServer) -> None:
    with httpx.Client() as client:
        wrong = console_login(client, admin_server, password="guess guess guess")
        unknown = console_login(client, admin_server, user_name="nobody")

    for response in (wrong, unknown):
        assert response.status_code == 403
        assert CREDENTIALS_REFUSED in response.text
        assert SESSION not in response.headers.get("set-cookie", "")


def test_members_of_the_admin_group_log_in_with_their_password(
    installation: Installation, admin_server: LiveServer
) -> None:
    add_person(installation, "helen", full_name="Helen Desk")
    add_person(installation, "pupil", full_name="A Pupil")
    with installation.db.transaction() as session:
        users.add_group(session, "helpdesk")
        users.add_member(session, "helpdesk", "helen")

    with httpx.Client() as client:
        # Group void (the default): users do not get in, whatever their password.
        assert console_login(client, admin_server, "helen", PASSWORD).status_code == 403
        set_config_live(installation, {"admin.web.group": "helpdesk"})
        assert console_login(client, admin_server, "pupil", PASSWORD).status_code == 403
        member = console_login(client, admin_server, "helen", PASSWORD)
        assert member.status_code == 303 and member.headers["location"] == "/admin"
        page = client.get(f"{admin_server.url}/admin")
        assert page.status_code == 200
        assert 'id="admin-name" title="admin group member">helen<' in page.text

        # Out of the group, out of the console: the session no longer opens a page.
        with installation.db.transaction() as session:
            users.remove_member(session, "helpdesk", "helen")
        gone = client.get(f"{admin_server.url}/admin", follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"] == "/admin/login"


def test_a_user_web_session_does_not_open_the_console(
    installation: Installation, admin_server: LiveServer
) -> None:
    add_person(installation, "helen")
    with httpx.Client() as client:
        form = client.get(f"{admin_server.url}/user")
        client.post(
            f"{admin_server.url}/user/login",
            data={"username": "helen", "password": PASSWORD, "csrf_token": csrf_on(form)},
        )
        assert client.get(f"{admin_server.url}/user").text.count("Log out") >= 1
        page = client.get(f"{admin_server.url}/admin", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/admin/login"


# --- CSRF --------------------------------------------------------------------------------------


def test_log_in_without_the_forms_csrf_token_is_refused(admin_server: LiveServer) -> None:
    with httpx.Client() as client:
        client.get(f"{admin_server.url}/admin/login")
        response = client.post(
            f"{admin_server.url}/admin/login",
            data={"username": ADMIN_NAME, "password": ADMIN_PASSWORD, "csrf_token": "x" * 43},
            follow_redirects=False,
        )
    assert response.status_code == 403
    assert CSRF_REFUSED in response.text
    assert SESSION not in response.headers.get("set-cookie", "")


def test_a_form_posted_without_a_session_changes_nothing(
    installation: Installation, admin_server: LiveServer
) -> None:
    with httpx.Client() as client:
        response = client.post(
            f"{admin_server.url}/admin/settings",
            data={"name": "system.maintenance", "value": "Y", "csrf_token": "z" * 43},
            follow_redirects=False,
        )
    assert response.status_code == 403
    assert "Please log in to the admin console first." in response.text
    assert installation.config.snapshot()["system.maintenance"] is False


def test_a_logged_in_form_without_the_sessions_token_is_refused(
    installation: Installation, admin_server: LiveServer
) -> None:
    with httpx.Client() as client:
        assert console_login(client, admin_server).status_code == 303
        login_csrf = client.cookies.get("printsrv_admin_csrf")

        for path in ("/admin/logout", "/admin/settings"):
            for token in ("", login_csrf, "y" * 43):
                refused = client.post(
                    f"{admin_server.url}{path}",
                    data={"csrf_token": token, "name": "system.maintenance", "value": "Y"},
                    follow_redirects=False,
                )
                assert refused.status_code == 403, (path, token)
                assert CSRF_REFUSED in refused.text
        assert admin_sessions(installation) == 1
        assert installation.config.snapshot()["system.maintenance"] is False

        page = client.get(f"{admin_server.url}/admin")
        done = client.post(
            f"{admin_server.url}/admin/logout",
            data={"csrf_token": csrf_on(page)},
            follow_redirects=False,
        )
    assert done.status_code == 303
    assert admin_sessions(installation) == 0


# --- throttling, addresses, TLS ------------------------------------------------------------------


@pytest.fixture
def strict_limits(installation: Installation) -> None:
    set_config(
        installation,
        {
            "web-login.throttle.user.max-failures": "3",
            "web-login.throttle.address.max-failures": "20",
            "server.trusted-proxies": "127.0.0.1/32",
        },
    )


def from_address(address: str) -> dict[str, str]:
    # A remote client behind the trusted TLS proxy (on loopback).
    return {"X-Forwarded-For": address, "X-Forwarded-Proto": "https"}


def test_failed_logins_are_throttled_across_servers(
    strict_limits: None,
    admin_server: LiveServer,
    environment: Environment,
) -> None:
    other = open_installation(environment)
    second = LiveServer(other).start()
    try:
        with httpx.Client() as client:
            for n, server in enumerate((admin_server, second, admin_server)):
                address = from_address(f"198.51.100.{n}")
                wrong = console_login(client, server, password="guess guess", headers=address)
                assert wrong.status_code == 403
            # The right password, from a fresh address, on the other server: it waits.
            blocked = console_login(client, second, headers=from_address("192.0.2.9"))
    finally:
        second.stop()
        other.db.dispose()

    assert blocked.status_code == 429
    assert "Too many failed logins" in blocked.text
    assert 0 < int(blocked.headers["retry-after"]) <= 900


def test_only_allowlisted_addresses_reach_the_console(
    installation: Installation, strict_limits: None, admin_server: LiveServer
) -> None:
    set_config_live(installation, {"api.restful.ip-addresses-allowed": "192.0.2.0/24"})
    with httpx.Client() as client:
        outside = client.get(f"{admin_server.url}/admin/login", headers=from_address("203.0.113.5"))
        assert outside.status_code == 403
        assert "203.0.113.5 is not allowed to use the admin console" in outside.text
        assert 'name="password"' not in outside.text
        refused_post = client.post(
            f"{admin_server.url}/admin/login",
            data={"username": ADMIN_NAME, "password": ADMIN_PASSWORD},
            headers=from_address("203.0.113.5"),
        )
        assert refused_post.status_code == 403

        inside = console_login(client, admin_server, headers=from_address("192.0.2.7"))
        assert inside.status_code == 303


def test_off_loopback_the_console_needs_https(
    installation: Installation, strict_limits: None, admin_server: LiveServer
) -> None:
    with httpx.Client() as client:
        plain = client.get(
            f"{admin_server.url}/admin/login", headers={"X-Forwarded-For": "192.0.2.7"}
        )
        assert plain.status_code == 403
        assert "The admin console needs https" in plain.text

        secure = console_login(client, admin_server, headers=from_address("192.0.2.7"))
    assert secure.status_code == 303
    assert "secure" in secure.headers["set-cookie"].lower()


# --- when a session ends -----------------------------------------------------------------------


def test_a_session_ends_when_idle_or_when_the_rest_admin_changes(
    installation: Installation, admin_server: LiveServer
) -> None:
    from sqlalchemy import update

    from printsrv.platform.models import utcnow

    with httpx.Client() as client:
        assert console_login(client, admin_server).status_code == 303
        assert client.get(f"{admin_server.url}/admin").status_code == 200
        # Idle past its end (as if web-login.session.idle-mins had passed).
        with installation.db.transaction() as session:
            session.execute(update(AdminSession).values(expires_at=utcnow()))
        idle = client.get(f"{admin_server.url}/admin", follow_redirects=False)
        assert idle.status_code == 303 and idle.headers["location"] == "/admin/login"

        # A new password ends the sessions opened with the old one.
        assert console_login(client, admin_server).status_code == 303
        set_config_live(installation, {"api.restful.auth.password": "a brand new password"})
        new_password = client.get(f"{admin_server.url}/admin", follow_redirects=False)
        assert new_password.headers["location"] == "/admin/login"
        assert (
            console_login(client, admin_server, password="a brand new password").status_code == 303
        )
        assert client.get(f"{admin_server.url}/admin").status_code == 200

        # So does a new name.
        set_config_live(installation, {"api.restful.auth.username": "someone-else"})
        renamed = client.get(f"{admin_server.url}/admin", follow_redirects=False)
    assert renamed.status_code == 303 and renamed.headers["location"] == "/admin/login"

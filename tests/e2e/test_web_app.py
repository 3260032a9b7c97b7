"""The web app at /user over a real socket: sessions, CSRF, rate limits, logout, cookies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update
from support import LiveServer, set_config
from web_support import (
    PASSWORD,
    accounting_tables,
    add_person,
    create_token,
    enable_ttp,
    give_credit,
    token_login,
)

from printsrv.operations.installation import Installation, open_installation
from printsrv.people import users
from printsrv.people.logins import CREDENTIALS_REFUSED
from printsrv.people.models import WebSession
from printsrv.platform.environment import Environment
from printsrv.platform.models import utcnow
from printsrv.web.views import CSRF_REFUSED


@pytest.fixture
def janet(installation: Installation) -> Iterator[str]:
    enable_ttp(installation)
    add_person(installation, "janet", alias="S123456")
    with accounting_tables(installation):
        give_credit(installation, "janet", "12.50", "Semester credit")
        yield "janet"


def session_rows(installation: Installation) -> int:
    with installation.db.read() as session:
        return session.scalar(select(func.count()).select_from(WebSession)) or 0


def cookie_headers(response: httpx.Response, name: str) -> list[str]:
    return [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}=")]


def csrf_of(client: httpx.Client, server: LiveServer, headers: dict | None = None) -> str:
    page = client.get(f"{server.url}/user", headers=headers or {})
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    return token.group(1)


def password_login(
    client: httpx.Client,
    server: LiveServer,
    user_name: str,
    password: str = PASSWORD,
    headers: dict | None = None,
) -> httpx.Response:
    csrf = csrf_of(client, server, headers)
    headers = dict(headers or {})
    if headers.get("X-Forwarded-Proto") == "https":
        # The browser speaks https to the proxy, so it sends the Secure CSRF cookie; this
        # client speaks http to the server and would keep it back.
        headers["Cookie"] = f"printsrv_csrf={csrf}"
    return client.post(
        f"{server.url}/user/login",
        data={"username": user_name, "password": password, "csrf_token": csrf},
        headers=headers,
        follow_redirects=False,
    )


# --- pages -------------------------------------------------------------------------------------


def test_login_page_is_self_contained_and_fits_a_phone(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/user")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in response.text
    assert not re.search(r'(src|href)="(https?:)?//', response.text), "no other site"
    assert "<script" not in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["cache-control"] == "no-store"
    style = httpx.get(f"{live_server.url}/user/static/style.css")
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")
    assert "@media" in style.text


def test_password_login_opens_a_session_and_shows_balance(
    installation: Installation, janet: str, live_server: LiveServer
) -> None:
    with httpx.Client() as browser:
        response = password_login(browser, live_server, "S123456")
        assert response.status_code == 303
        [cookie] = cookie_headers(response, "printsrv_session")
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Path=/user" in cookie
        assert "Secure" not in cookie  # plain http, no proxy
        page = browser.get(f"{live_server.url}/user")
    assert "Janet Jones" in page.text
    assert ">12.50<" in page.text
    assert "Semester credit" in page.text
    assert session_rows(installation) == 1


def test_user_without_an_account_sees_zero(
    installation: Installation, janet: str, live_server: LiveServer
) -> None:
    add_person(installation, "newbie", full_name="New Student")
    with httpx.Client() as browser:
        assert password_login(browser, live_server, "newbie").status_code == 303
        page = browser.get(f"{live_server.url}/user")
    assert 'data-amount="0.000000">0.00<' in page.text
    assert "No transactions yet." in page.text


def test_wrong_password_and_unknown_user_look_the_same(
    installation: Installation, janet: str, live_server: LiveServer
) -> None:
    with httpx.Client() as browser:
        wrong = password_login(browser, live_server, "janet", "not it")
        unknown = password_login(browser, live_server, "nobody", "not it")
    for response in (wrong, unknown):
        assert response.status_code == 403
        assert CREDENTIALS_REFUSED in response.text
        assert not cookie_headers(response, "printsrv_session")
    assert session_rows(installation) == 0


def test_session_is_seen_by_every_server_of_the_installation(
    janet: str, live_server: LiveServer, environment: Environment
) -> None:
    other = open_installation(environment)  # another machine: same database and secret
    second = LiveServer(other).start()
    try:
        with httpx.Client() as browser:
            assert password_login(browser, live_server, "janet").status_code == 303
            assert "Janet Jones" in browser.get(f"{second.url}/user").text
    finally:
        second.stop()
        other.db.dispose()


def test_idle_session_expires(
    installation: Installation, janet: str, live_server: LiveServer
) -> None:
    with httpx.Client() as browser:
        assert password_login(browser, live_server, "janet").status_code == 303
        with installation.db.transaction() as session:
            session.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        page = browser.get(f"{live_server.url}/user")
    assert "Log in" in page.text and "Janet Jones" not in page.text
    [cleared] = cookie_headers(page, "printsrv_session")
    assert "Max-Age=0" in cleared or "expires=" in cleared.lower()


def test_active_session_is_renewed(
    installation: Installation, janet: str, live_server: LiveServer
) -> None:
    with httpx.Client() as browser:
        assert password_login(browser, live_server, "janet").status_code == 303
        soon = utcnow() + timedelta(minutes=1)  # less than half of the 30 idle minutes left
        with installation.db.transaction() as session:
            session.execute(update(WebSession).values(expires_at=soon))
        assert "Janet Jones" in browser.get(f"{live_server.url}/user").text
    with installation.db.read() as session:
        renewed = session.scalar(select(WebSession.expires_at))
    assert renewed is not None and renewed > soon + timedelta(minutes=20)


def test_disabling_a_user_ends_their_session(
    installation: Installation, janet: str, live_server: LiveServer
) -> None:
    with httpx.Client() as browser:
        assert password_login(browser, live_server, "janet").status_code == 303
        with installation.db.transaction() as session:
            users.set_enabled(session, "janet", False)
        assert "Janet Jones" not in browser.get(f"{live_server.url}/user").text


def test_a_new_login_replaces_the_browsers_old_session(
    installation: Installation, janet: str, live_server: LiveServer
) -> None:
    with httpx.Client() as browser:
        assert password_login(browser, live_server, "janet").status_code == 303
        first = browser.cookies["printsrv_session"]
        token = create_token(live_server, "janet")
        assert token_login(browser, live_server, "janet", token).status_code == 303
        assert browser.cookies["printsrv_session"] != first
    assert session_rows(installation) == 1


# --- CSRF --------------------------------------------------------------------------------------


@pytest.mark.parametrize("csrf", [None, "", "x" * 43, "not-even-the-right-shape!"])
def test_password_login_needs_the_forms_csrf_token(
    installation: Installation, janet: str, live_server: LiveServer, csrf: str | None
) -> None:
    with httpx.Client() as browser:
        csrf_of(browser, live_server)  # the browser holds a CSRF cookie
        form = {"username": "janet", "password": PASSWORD}
        if csrf is not None:
            form["csrf_token"] = csrf
        response = browser.post(f"{live_server.url}/user/login", data=form, follow_redirects=False)
    assert response.status_code == 403
    assert CSRF_REFUSED in response.text
    assert session_rows(installation) == 0


def test_cross_site_password_login_without_the_cookie_is_refused(
    installation: Installation, janet: str, live_server: LiveServer
) -> None:
    # An attacker's page can copy a token from its own visit, but cannot set our cookie.
    with httpx.Client() as attacker:
        stolen = csrf_of(attacker, live_server)
    response = httpx.post(
        f"{live_server.url}/user/login",
        data={"username": "janet", "password": PASSWORD, "csrf_token": stolen},
    )
    assert response.status_code == 403
    assert session_rows(installation) == 0


def test_logout_needs_the_sessions_csrf_token(
    installation: Installation, janet: str, live_server: LiveServer
) -> None:
    with httpx.Client() as browser:
        assert password_login(browser, live_server, "janet").status_code == 303
        login_csrf = browser.cookies["printsrv_csrf"]
        for form in ({}, {"csrf_token": login_csrf}):
            response = browser.post(
                f"{live_server.url}/user/logout", data=form, follow_redirects=False
            )
            assert response.status_code == 403
        assert "Janet Jones" in browser.get(f"{live_server.url}/user").text
    assert session_rows(installation) == 1


def test_logout_ends_the_session_on_the_server(
    installation: Installation, janet: str, live_server: LiveServer
) -> None:
    with httpx.Client() as browser:
        assert password_login(browser, live_server, "janet").status_code == 303
        stolen = browser.cookies["printsrv_session"]
        page = browser.get(f"{live_server.url}/user")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        response = browser.post(
            f"{live_server.url}/user/logout",
            data={"csrf_token": csrf.group(1)},
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert cookie_headers(response, "printsrv_session")  # the browser forgets it
    assert session_rows(installation) == 0
    # Someone who copied the cookie before logout gets nothing with it afterwards.
    with httpx.Client(cookies={"printsrv_session": stolen}) as thief:
        assert "Janet Jones" not in thief.get(f"{live_server.url}/user").text


# --- rate limits -------------------------------------------------------------------------------


@pytest.fixture
def strict_limits(installation: Installation) -> None:
    set_config(
        installation,
        {
            "web-login.throttle.user.max-failures": "3",
            "web-login.throttle.address.max-failures": "5",
            "server.trusted-proxies": "127.0.0.1/32",
        },
    )


def from_address(address: str) -> dict[str, str]:
    # A remote client behind the trusted TLS proxy: off loopback, credentials need https.
    return {"X-Forwarded-For": address, "X-Forwarded-Proto": "https"}


def test_rate_limit_per_user_name(janet: str, strict_limits: None, live_server: LiveServer) -> None:
    with httpx.Client() as browser:
        for n in range(3):
            response = password_login(
                browser, live_server, "janet", "guess", from_address(f"198.51.100.{n}")
            )
            assert response.status_code == 403
        # Even the right password, from a fresh address, and by alias, waits now.
        blocked = password_login(browser, live_server, "s123456", headers=from_address("192.0.2.9"))
        assert blocked.status_code == 429
        assert "Too many failed logins" in blocked.text
        assert 0 < int(blocked.headers["retry-after"]) <= 900
        token = create_token(live_server, "janet")
        assert token_login(browser, live_server, "janet", token).status_code == 429


def test_rate_limit_per_address_counts_ipv6_per_64(
    installation: Installation, janet: str, strict_limits: None, live_server: LiveServer
) -> None:
    add_person(installation, "mallory", full_name="Mallory")
    with httpx.Client() as browser:
        for n in range(5):
            address = from_address(f"2001:db8:1:2::{n + 1}")
            assert password_login(browser, live_server, f"user{n}", "x", address).status_code == 403
        same_64 = from_address("2001:db8:1:2:ffff::1")
        assert password_login(browser, live_server, "mallory", headers=same_64).status_code == 429
        other_64 = from_address("2001:db8:1:3::1")
        assert password_login(browser, live_server, "mallory", headers=other_64).status_code == 303


def test_rate_limit_is_shared_by_every_server(
    janet: str, strict_limits: None, live_server: LiveServer, environment: Environment
) -> None:
    other = open_installation(environment)
    second = LiveServer(other).start()
    try:
        with httpx.Client() as browser:
            for server in (live_server, second, live_server):
                assert password_login(browser, server, "janet", "guess").status_code == 403
            assert password_login(browser, second, "janet").status_code == 429
    finally:
        second.stop()
        other.db.dispose()


def test_failed_token_logins_count_too(
    janet: str, strict_limits: None, live_server: LiveServer
) -> None:
    with httpx.Client() as browser:
        for _ in range(3):
            assert token_login(browser, live_server, "janet", "forged").status_code == 403
        assert password_login(browser, live_server, "janet").status_code == 429


def test_successful_login_clears_the_user_names_failures(
    janet: str, strict_limits: None, live_server: LiveServer
) -> None:
    for _ in range(2):  # 2 + 2 failures stay under 3 only if the login between cleared them
        with httpx.Client() as browser:
            for _ in range(2):
                refused = password_login(browser, live_server, "janet", "guess")
                assert CREDENTIALS_REFUSED in refused.text
            assert password_login(browser, live_server, "janet").status_code == 303


# --- cookies behind a TLS proxy ---------------------------------------------------------------


@pytest.fixture
def behind_proxy(installation: Installation) -> None:
    set_config(installation, {"server.trusted-proxies": "127.0.0.1/32"})


HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "print.example.edu"}


def test_cookies_are_secure_over_https_via_a_trusted_proxy(
    janet: str, behind_proxy: None, live_server: LiveServer
) -> None:
    login_page = httpx.get(f"{live_server.url}/user", headers=HTTPS)
    [csrf_cookie] = cookie_headers(login_page, "printsrv_csrf")
    assert "Secure" in csrf_cookie and "HttpOnly" in csrf_cookie
    token = create_token(live_server, "janet")
    response = httpx.post(
        f"{live_server.url}/user",
        data={"auth_user": "janet", "auth_token": token},
        headers=HTTPS,
    )
    assert response.status_code == 303
    [session_cookie] = cookie_headers(response, "printsrv_session")
    assert "Secure" in session_cookie
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie


def test_forwarded_proto_from_an_untrusted_peer_is_ignored(
    janet: str, live_server: LiveServer
) -> None:
    login_page = httpx.get(f"{live_server.url}/user", headers=HTTPS)
    [csrf_cookie] = cookie_headers(login_page, "printsrv_csrf")
    assert "Secure" not in csrf_cookie


# --- forms -------------------------------------------------------------------------------------


def test_token_login_accepts_a_multipart_form(janet: str, live_server: LiveServer) -> None:
    token = create_token(live_server, "janet")
    response = httpx.post(
        f"{live_server.url}/user",
        files={"auth_user": (None, "janet"), "auth_token": (None, token)},
    )
    assert response.status_code == 303


def test_oversized_or_overfull_forms_are_refused(live_server: LiveServer) -> None:
    huge = httpx.post(f"{live_server.url}/user", data={"auth_token": "x" * 100_000})
    assert huge.status_code == 413
    assert "<html" in huge.text
    overfull = httpx.post(f"{live_server.url}/user", data={f"f{n}": "x" for n in range(100)})
    assert overfull.status_code == 400

"""Credentials travel only over TLS off loopback: REST admin and user services, XML-RPC and
the web app refuse a remote client on plain HTTP with 403 (an XML-RPC fault) before they
read the credentials, and change nothing; public REST routes stay open.

A remote client is played as tests/e2e/test_jsonrpc_access.py does: the test is the
trusted proxy on loopback, naming the client in X-Forwarded-For, and saying https with
X-Forwarded-Proto (or not). Over a real socket, on both back-ends.
"""

from __future__ import annotations

import re
import ssl
import threading
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from support import LiveServer, make_certificate, open_jsonrpc, set_config
from web_support import API_KEY, PASSWORD, add_person, create_token, enable_ttp, give_credit

from financial import AccountTrx
from printsrv.accounts.models import IdempotencyKey
from printsrv.app import create_app
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.people.models import LoginThrottle, SpentLoginToken, WebSession

ADMIN = ("admin", "admin-password")  # what open_jsonrpc sets
REMOTE = "192.0.2.10"
PLAIN = {"X-Forwarded-For": REMOTE}
HTTPS = {"X-Forwarded-For": REMOTE, "X-Forwarded-Proto": "https"}
COUNTED = (AccountTrx, IdempotencyKey, WebSession, LoginThrottle, SpentLoginToken)


def rows(installation: Installation) -> dict[str, int]:
    with installation.db.read() as session:
        return {
            table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
            for table in COUNTED
        }


@dataclass
class World:
    installation: Installation
    server: LiveServer
    uuid: str

    @property
    def rest(self) -> str:
        return f"{self.server.url}/restful/v1"


@pytest.fixture
def world(installation: Installation) -> Iterator[World]:
    """janet (password, UUID, 12.50), rijk; admin credentials; token logins; the test's
    loopback address is the trusted proxy."""
    open_jsonrpc(installation)
    enable_ttp(installation)
    set_config(installation, {"server.trusted-proxies": "127.0.0.1/32"})
    add_person(installation, "janet")
    add_person(installation, "rijk", full_name="Rijk")
    give_credit(installation, "janet", "12.50", "Semester credit")
    with installation.db.transaction() as session:
        uuid = users.issue_uuid(session, "janet", hasher=installation.hasher)
    server = LiveServer(installation).start()
    try:
        yield World(installation, server, uuid)
    finally:
        server.stop()


def assert_tls_refused(response: httpx.Response, service: str) -> None:
    """403 in the REST envelope, naming the service and saying TLS is required."""
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["succes"] is False
    assert body["error"].startswith(f"{service} needs https")
    assert "TLS is required" in body["error"]
    assert "www-authenticate" not in response.headers


# --- REST ----------------------------------------------------------------------------------------


def test_rest_admin_credentials_need_tls_off_loopback(world: World) -> None:
    echo = f"{world.rest}/tests/echo"
    adjust = f"{world.rest}/financial/account/balance?type=USER&name=janet&amount=1&adjust=true"
    before = rows(world.installation)
    assert_tls_refused(
        httpx.post(echo, auth=ADMIN, content="hi", headers=PLAIN), "The REST admin API"
    )
    assert_tls_refused(httpx.post(adjust, auth=ADMIN, headers=PLAIN), "The REST admin API")
    # Wrong credentials get the same answer: over plain HTTP none are even looked at.
    assert_tls_refused(
        httpx.post(echo, auth=("admin", "guess"), content="hi", headers=PLAIN),
        "The REST admin API",
    )
    metrics = httpx.get(f"{world.server.url}/metrics", auth=ADMIN, headers=PLAIN)
    assert metrics.status_code == 403 and "TLS is required" in metrics.text
    assert rows(world.installation) == before, "no ledger row"

    assert httpx.post(echo, auth=ADMIN, content="hi", headers=HTTPS).text == "hi"
    assert httpx.post(adjust, auth=ADMIN, headers=HTTPS).json()["result"] == "13.500000"
    assert httpx.get(f"{world.server.url}/metrics", auth=ADMIN, headers=HTTPS).status_code == 200
    # On loopback nothing travels over a network: plain HTTP is fine.
    assert httpx.post(echo, auth=ADMIN, content="hi").text == "hi"


def test_rest_user_credentials_need_tls_off_loopback(world: World) -> None:
    janet = ("janet", world.uuid)
    transfer = f"{world.rest}/financial/transfer?name=rijk&amount=1.50"
    balance = f"{world.rest}/financial/balance"
    before = rows(world.installation)
    assert_tls_refused(httpx.get(balance, auth=janet, headers=PLAIN), "The REST user API")
    assert_tls_refused(httpx.post(transfer, auth=janet, headers=PLAIN), "The REST user API")
    assert_tls_refused(
        httpx.post(transfer, auth=janet, headers={**PLAIN, "Idempotency-Key": "k-1"}),
        "The REST user API",
    )
    assert_tls_refused(
        httpx.post(
            f"{world.rest}/documents/print",
            auth=janet,
            headers=PLAIN,
            files={"file": ("a.txt", b"hello")},
        ),
        "The REST user API",
    )
    assert rows(world.installation) == before, "no ledger row, no idempotency key"

    assert httpx.post(transfer, auth=janet, headers=HTTPS).json() == {"succes": True}
    assert httpx.get(balance, auth=janet, headers=HTTPS).json()["result"] == "11.000000"


def test_public_rest_routes_stay_open_over_plain_http(world: World) -> None:
    assert httpx.get(f"{world.rest}/system/version", headers=PLAIN).status_code == 200
    seen = httpx.get(f"{world.rest}/tests/http/request", headers=PLAIN)
    assert seen.status_code == 200 and seen.json()["remoteAddr"] == REMOTE


# --- XML-RPC -------------------------------------------------------------------------------------


def create_token_call(server: LiveServer, headers: dict[str, str]) -> httpx.Response:
    body = xmlrpc.client.dumps((API_KEY, "janet"), "onetime-auth.createToken")
    return httpx.post(
        f"{server.url}/xmlrpc/v1", content=body, headers={"Content-Type": "text/xml", **headers}
    )


def test_xmlrpc_needs_tls_off_loopback(world: World) -> None:
    plain = create_token_call(world.server, PLAIN)
    assert plain.status_code == 200  # XML-RPC answers faults with 200
    with pytest.raises(xmlrpc.client.Fault) as fault:
        xmlrpc.client.loads(plain.content)
    assert fault.value.faultCode == 14
    assert fault.value.faultString.startswith("XML-RPC needs https")
    assert "TLS is required" in fault.value.faultString

    (token,), _ = xmlrpc.client.loads(create_token_call(world.server, HTTPS).content)
    assert isinstance(token, str) and token


# --- the web app ---------------------------------------------------------------------------------


def assert_tls_page(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "A secure connection is required" in response.text
    assert "TLS is required" in response.text
    assert not response.headers.get_list("set-cookie"), "no cookie over plain HTTP"


def test_web_app_needs_tls_off_loopback_and_spends_nothing(world: World) -> None:
    url = world.server.url
    token = create_token(world.server, "janet")  # from the LMS, on loopback
    before = rows(world.installation)
    with httpx.Client() as browser:
        assert_tls_page(browser.get(f"{url}/user", headers=PLAIN))
        assert_tls_page(
            browser.post(
                f"{url}/user", data={"auth_user": "janet", "auth_token": token}, headers=PLAIN
            )
        )
    # A login form fetched over https, then posted over plain HTTP with the password.
    with httpx.Client() as browser:
        page = browser.get(f"{url}/user", headers=HTTPS)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text
        assert_tls_page(
            browser.post(
                f"{url}/user/login",
                data={"username": "janet", "password": PASSWORD, "csrf_token": csrf[1]},
                headers={**PLAIN, "Cookie": f"printsrv_csrf={csrf[1]}"},
            )
        )
    assert rows(world.installation) == before, "no session, no failure counted, token unspent"

    # The same token over https logs janet in, with a Secure session cookie ...
    with httpx.Client() as browser:
        logged_in = browser.post(
            f"{url}/user",
            data={"auth_user": "janet", "auth_token": token},
            headers=HTTPS,
            follow_redirects=False,
        )
        assert logged_in.status_code == 303, logged_in.text
        [cookie] = [
            c for c in logged_in.headers.get_list("set-cookie") if c.startswith("printsrv_session=")
        ]
        assert "Secure" in cookie and "HttpOnly" in cookie
        session_id = cookie.split(";")[0].split("=", 1)[1]
    # ... and that session cookie, replayed over plain HTTP, opens nothing.
    stolen = httpx.get(f"{url}/user", headers={**PLAIN, "Cookie": f"printsrv_session={session_id}"})
    assert_tls_page(stolen)
    assert "Semester credit" not in stolen.text


# --- TLS straight to printsrv --------------------------------------------------------------------


class TlsLiveServer(LiveServer):
    """LiveServer speaking https itself (uvicorn's --ssl-certfile/--ssl-keyfile)."""

    def __init__(self, installation: Installation, cert: Path, key: Path) -> None:
        super().__init__(installation)
        self.url = self.url.replace("http://", "https://")
        config = uvicorn.Config(
            create_app(installation),
            log_level="warning",
            proxy_headers=False,
            server_header=False,
            lifespan="on",
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )


def test_tls_straight_to_printsrv_lets_a_remote_client_in(
    installation: Installation, tmp_path: Path
) -> None:
    """The scope's own https counts: a TLS connection from a trusted proxy that names a
    remote client and says nothing about the protocol is a TLS request."""
    open_jsonrpc(installation)
    set_config(installation, {"server.trusted-proxies": "127.0.0.1/32"})
    cert, key = make_certificate(tmp_path)
    server = TlsLiveServer(installation, cert, key).start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(verify=context) as client:
            echo = client.post(
                f"{server.url}/restful/v1/tests/echo", auth=ADMIN, content="hi", headers=PLAIN
            )
            assert echo.status_code == 200 and echo.text == "hi"
            page = client.get(f"{server.url}/user", headers=PLAIN)
            assert page.status_code == 200
            assert all("Secure" in c for c in page.headers.get_list("set-cookie"))
            # A proxy that says the client came over plain HTTP is believed too.
            downgraded = client.post(
                f"{server.url}/restful/v1/tests/echo",
                auth=ADMIN,
                content="hi",
                headers={**PLAIN, "X-Forwarded-Proto": "http"},
            )
            assert_tls_refused(downgraded, "The REST admin API")
    finally:
        server.stop()

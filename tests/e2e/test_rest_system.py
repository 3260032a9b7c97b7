"""The REST public and admin test services over a real socket (/restful/v1/system, /tests)."""

from __future__ import annotations

import re
import socket

import httpx
import pytest
from support import LiveServer, set_config, wait_until

from printsrv.operations.installation import Installation

ADMIN = ("admin", "s3cret-admin")


@pytest.fixture
def admin(installation: Installation) -> tuple[str, str]:
    set_config(
        installation, {"api.restful.auth.username": ADMIN[0], "api.restful.auth.password": ADMIN[1]}
    )
    return ADMIN


def test_version_is_plain_text_like_savapage(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/restful/v1/system/version")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert re.fullmatch(r"printsrv \d+\.\d+\.\d+ \(Build \d{8}\)", response.text)


def test_http_request_describes_the_direct_client(live_server: LiveServer) -> None:
    response = httpx.get(
        f"{live_server.url}/restful/v1/tests/http/request",
        headers={
            "User-Agent": "curl/7.47.0",
            "X-Forwarded-For": "1.2.3.4",
            "Authorization": "Basic c2VjcmV0OnNlY3JldA==",
            "Cookie": "s=1",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "remoteAddr",
        "remoteHost",
        "remotePort",
        "localAddr",
        "serverName",
        "serverPort",
        "headers",
    }
    assert body["remoteAddr"] == body["remoteHost"] == "127.0.0.1", "XFF from untrusted peer"
    assert isinstance(body["remotePort"], int)
    assert body["localAddr"] == "127.0.0.1"
    assert body["serverName"] == "127.0.0.1"
    assert body["serverPort"] == live_server.port
    assert body["headers"]["User-Agent"] == "curl/7.47.0"
    assert body["headers"]["X-Forwarded-For"] == "1.2.3.4"
    assert body["headers"]["Authorization"] == "[secure]"
    assert body["headers"]["Cookie"] == "[secure]"


def test_http_request_believes_a_trusted_proxy(installation: Installation) -> None:
    set_config(installation, {"server.trusted-proxies": "127.0.0.1/32"})
    server = LiveServer(installation).start()
    try:
        body = httpx.get(
            f"{server.url}/restful/v1/tests/http/request",
            headers={
                "X-Forwarded-For": "2021:661:4cc6:1:5561:96ff:ca11:d4a",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "savapage.example.com",
            },
        ).json()
    finally:
        server.stop()
    assert body["remoteAddr"] == "[2021:661:4cc6:1:5561:96ff:ca11:d4a]"
    assert body["serverName"] == "savapage.example.com"
    assert body["serverPort"] == 443


def test_http_request_over_ipv6_brackets_addresses(installation: Installation) -> None:
    server = LiveServer(installation, host="::1").start()
    try:
        body = httpx.get(f"{server.url}/restful/v1/tests/http/request").json()
    finally:
        server.stop()
    assert body["remoteAddr"] == "[::1]"
    assert body["localAddr"] == "[::1]"


def test_echo_returns_the_body_to_the_admin(admin: tuple, live_server: LiveServer) -> None:
    response = httpx.post(
        f"{live_server.url}/restful/v1/tests/echo",
        auth=admin,
        content="Hello World!",
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 200
    assert response.text == "Hello World!"
    assert response.headers["content-type"].startswith("text/plain")


def test_echo_does_not_serve_html(admin: tuple, live_server: LiveServer) -> None:
    response = httpx.post(
        f"{live_server.url}/restful/v1/tests/echo",
        auth=admin,
        content="<script>x</script>",
        headers={"Content-Type": "text/html"},
    )
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "auth_header",
    [
        None,
        "Basic YWRtaW46d3Jvbmc=",
        "Basic !!!",
        "Bearer x",
        "Basic " + "QQ==" * 2000,
        "Basic /w==",
        "Basic \u00ff\u00fe".encode("latin-1"),
    ],
)
def test_echo_refuses_wrong_or_malformed_credentials_with_401(
    admin: tuple, live_server: LiveServer, auth_header: str | bytes | None
) -> None:
    headers = {"Authorization": auth_header} if auth_header is not None else {}
    response = httpx.post(f"{live_server.url}/restful/v1/tests/echo", content="x", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.json()["succes"] is False
    assert response.json()["error"]


def test_echo_with_no_admin_configured_lets_nobody_in(live_server: LiveServer) -> None:
    response = httpx.post(f"{live_server.url}/restful/v1/tests/echo", content="x", auth=("", ""))
    assert response.status_code == 401


def test_echo_from_an_address_outside_the_allowlist_is_forbidden(
    installation: Installation, admin: tuple
) -> None:
    set_config(installation, {"api.restful.ip-addresses-allowed": "10.0.0.0/8"})
    server = LiveServer(installation).start()
    try:
        response = httpx.post(f"{server.url}/restful/v1/tests/echo", auth=admin, content="x")
    finally:
        server.stop()
    assert response.status_code == 403
    assert "127.0.0.1" in response.json()["error"]


def test_config_change_reaches_the_running_server_within_a_second(
    admin: tuple, installation: Installation, live_server: LiveServer
) -> None:
    url = f"{live_server.url}/restful/v1/tests/echo"
    assert httpx.post(url, auth=admin, content="x").status_code == 200
    set_config(installation, {"api.restful.ip-addresses-allowed": "10.0.0.0/8"})
    wait_until(lambda: httpx.post(url, auth=admin, content="x").status_code == 403, timeout=1.0)
    set_config(installation, {"api.restful.ip-addresses-allowed": ""})
    wait_until(lambda: httpx.post(url, auth=admin, content="x").status_code == 200, timeout=1.0)


def test_echo_body_over_the_cap_is_refused_with_413(admin: tuple, live_server: LiveServer) -> None:
    response = httpx.post(
        f"{live_server.url}/restful/v1/tests/echo", auth=admin, content=b"x" * (1024 * 1024 + 1)
    )
    assert response.status_code == 413
    assert "limit" in response.json()["error"]


def test_unknown_rest_path_is_a_readable_404(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/restful/v1/no/such/thing")
    assert response.status_code == 404
    assert response.json() == {
        "succes": False,
        "error": "No REST service at /restful/v1/no/such/thing",
    }


def test_unknown_path_outside_the_apis_is_a_readable_404(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/nowhere")
    assert response.status_code == 404
    assert "no service at /nowhere" in response.text


def test_wrong_method_is_405_with_allow(live_server: LiveServer) -> None:
    response = httpx.delete(f"{live_server.url}/restful/v1/system/version")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]
    assert response.json()["succes"] is False


def raw_request(server: LiveServer, data: bytes) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_non_utf8_bytes_in_headers_get_a_4xx(admin: tuple, live_server: LiveServer) -> None:
    answer = raw_request(
        live_server,
        b"POST /restful/v1/tests/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \xff\xfe\r\n"
        b"Content-Length: 1\r\nConnection: close\r\n\r\nx",
    )
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


def test_huge_headers_get_a_4xx_not_a_500(live_server: LiveServer) -> None:
    answer = raw_request(
        live_server,
        b"GET /restful/v1/system/version HTTP/1.1\r\nHost: x\r\nX-Big: "
        + b"a" * 200_000
        + b"\r\nConnection: close\r\n\r\n",
    )
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:200]


def test_garbage_request_line_gets_a_400(live_server: LiveServer) -> None:
    answer = raw_request(live_server, b"\x16\x03\x01 garbage\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]

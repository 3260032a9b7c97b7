"""XML-RPC at /xmlrpc/v1 over a real socket: tokens, the login they give, faults, hostile XML.

The client is Python's `xmlrpc.client`, as an LMS plugin's library would be.
"""

from __future__ import annotations

import socket
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import LiveServer, set_config
from web_support import (
    API_KEY,
    accounting_tables,
    add_person,
    create_token,
    enable_ttp,
    give_credit,
    proxy,
    token_login,
)

from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.people.logins import LINK_REFUSED
from printsrv.rpc import xmlrpc as adapter

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602


# Fixtures that set config come before `live_server` in a test's arguments, so the server
# starts with that config already in force.


@pytest.fixture
def ttp(installation: Installation) -> None:
    enable_ttp(installation)


@pytest.fixture
def janet(installation: Installation, ttp: None) -> Iterator[str]:
    add_person(installation, "janet", alias="S123456")
    with accounting_tables(installation):
        give_credit(installation, "janet", "9.26", "Top-up at the library desk")
        yield "janet"


def create(server: LiveServer, *args: object) -> object:
    with proxy(server) as client:
        return getattr(client, "onetime-auth").createToken(*args)


def fault_of(call) -> xmlrpc.client.Fault:  # type: ignore[no-untyped-def]
    with pytest.raises(xmlrpc.client.Fault) as caught:
        call()
    return caught.value


def post_xml(server: LiveServer, body: bytes | str) -> httpx.Response:
    return httpx.post(f"{server.url}/xmlrpc/v1", content=body, headers={"Content-Type": "text/xml"})


def fault_in(response: httpx.Response) -> xmlrpc.client.Fault:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    with pytest.raises(xmlrpc.client.Fault) as caught:
        xmlrpc.client.loads(response.content)
    return caught.value


# --- the happy path ----------------------------------------------------------------------------


def test_token_logs_the_user_in_and_shows_their_page(janet: str, live_server: LiveServer) -> None:
    token = create_token(live_server, janet)
    with httpx.Client() as browser:
        response = token_login(browser, live_server, janet, token)
        assert response.status_code == 303
        assert response.headers["location"] == "/user"
        page = browser.get(f"{live_server.url}/user")
    assert page.status_code == 200
    assert "Janet Jones" in page.text
    assert 'data-amount="9.260000">9.26<' in page.text
    assert "Top-up at the library desk" in page.text


def test_alias_works_for_both_the_token_and_the_login(janet: str, live_server: LiveServer) -> None:
    token = create_token(live_server, "S123456")
    with httpx.Client() as browser:
        assert token_login(browser, live_server, "s123456", token).status_code == 303
        assert "Janet Jones" in browser.get(f"{live_server.url}/user").text


def test_token_is_refused_the_second_time(janet: str, live_server: LiveServer) -> None:
    token = create_token(live_server, janet)
    with httpx.Client() as first:
        assert token_login(first, live_server, janet, token).status_code == 303
    with httpx.Client() as second:
        again = token_login(second, live_server, janet, token)
        assert again.status_code == 403
        assert LINK_REFUSED in again.text
        assert "printsrv_session" not in again.headers.get("set-cookie", "")
        assert "Janet Jones" not in second.get(f"{live_server.url}/user").text


@pytest.fixture
def short_lived(installation: Installation, ttp: None) -> None:
    set_config(installation, {"web-login.ttp.token.expiry-msecs": "100"})


def test_expired_token_is_refused(short_lived: None, janet: str, live_server: LiveServer) -> None:
    token = create_token(live_server, janet)
    time.sleep(0.3)
    with httpx.Client() as browser:
        response = token_login(browser, live_server, janet, token)
    assert response.status_code == 403
    assert LINK_REFUSED in response.text


def test_token_for_one_user_is_refused_for_another(
    installation: Installation, janet: str, live_server: LiveServer
) -> None:
    add_person(installation, "mallory", full_name="Mallory")
    token = create_token(live_server, janet)
    with httpx.Client() as browser:
        refused = token_login(browser, live_server, "mallory", token)
        assert refused.status_code == 403
        assert LINK_REFUSED in refused.text
        # The refusal did not spend it: its own user can still log in with it.
        assert token_login(browser, live_server, janet, token).status_code == 303


def test_tampered_token_is_refused_with_the_same_message(
    janet: str, live_server: LiveServer
) -> None:
    token = create_token(live_server, janet)
    middle = len(token) // 2
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    with httpx.Client() as browser:
        responses = [
            token_login(browser, live_server, janet, tampered),
            token_login(browser, live_server, janet, ""),
            token_login(browser, live_server, "", token),
        ]
    for response in responses:
        assert response.status_code == 403
        assert LINK_REFUSED in response.text


# --- faults of createToken ---------------------------------------------------------------------


@pytest.fixture
def key_but_disabled(installation: Installation) -> None:
    set_config(installation, {"web-login.ttp.apikey": API_KEY})


@pytest.fixture
def enabled_without_key(installation: Installation) -> None:
    set_config(installation, {"web-login.ttp.enable": "Y"})


def test_fault_when_ttp_login_is_disabled(
    installation: Installation, key_but_disabled: None, live_server: LiveServer
) -> None:
    add_person(installation, "janet")
    fault = fault_of(lambda: create(live_server, API_KEY, "janet"))
    assert fault.faultCode == 6
    assert "web-login.ttp.enable" in fault.faultString


def test_fault_for_a_wrong_or_empty_key(
    installation: Installation, ttp: None, live_server: LiveServer
) -> None:
    add_person(installation, "janet")
    for key in ("wrong", ""):
        fault = fault_of(lambda key=key: create(live_server, key, "janet"))
        assert fault.faultCode == 4
        assert "API key" in fault.faultString


def test_fault_when_no_key_is_configured(
    installation: Installation, enabled_without_key: None, live_server: LiveServer
) -> None:
    add_person(installation, "janet")
    assert fault_of(lambda: create(live_server, "", "janet")).faultCode == 4


def test_fault_for_an_unknown_user(ttp: None, live_server: LiveServer) -> None:
    fault = fault_of(lambda: create(live_server, API_KEY, "nobody"))
    assert fault.faultCode == 8
    assert "'nobody' does not exist" in fault.faultString


def test_fault_for_a_disabled_user(
    installation: Installation, ttp: None, live_server: LiveServer
) -> None:
    add_person(installation, "janet")
    with installation.db.transaction() as session:
        users.set_enabled(session, "janet", False)
    fault = fault_of(lambda: create(live_server, API_KEY, "janet"))
    assert fault.faultCode == 7
    assert "disabled" in fault.faultString


def test_fault_envelope_keeps_its_shape() -> None:
    body = adapter.fault_response(4, "API key is wrong").body
    assert (
        body
        == xmlrpc.client.dumps(
            xmlrpc.client.Fault(4, "API key is wrong"), methodresponse=True
        ).encode()
    )
    with pytest.raises(xmlrpc.client.Fault) as caught:
        xmlrpc.client.loads(body)
    assert (caught.value.faultCode, caught.value.faultString) == (4, "API key is wrong")


# --- calls that cannot be dispatched -----------------------------------------------------------


def test_unknown_method_is_a_fault(live_server: LiveServer) -> None:
    with proxy(live_server) as client:
        fault = fault_of(lambda: client.no.such.method())
    assert fault.faultCode == METHOD_NOT_FOUND
    assert "'no.such.method'" in fault.faultString


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((API_KEY,), "takes 2 parameter(s) (apikey: string, username: string); got 1"),
        ((API_KEY, "janet", "x"), "got 3"),
        ((API_KEY, 42), "parameter 2 (username) must be a string, not int"),
        ((True, "janet"), "parameter 1 (apikey) must be a string, not boolean"),
        ((API_KEY, ["janet"]), "must be a string, not array"),
    ],
)
def test_wrong_parameter_count_or_type_is_a_fault(
    live_server: LiveServer, args: tuple, message: str
) -> None:
    fault = fault_of(lambda: create(live_server, *args))
    assert fault.faultCode == INVALID_PARAMS
    assert message in fault.faultString


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", PARSE_ERROR),
        (b"<methodCall><methodName>system.listMethods", PARSE_ERROR),
        (b"\xff\xfe not xml", PARSE_ERROR),
        (b"<?xml version='1.0' encoding='x-unknown'?><methodCall/>", PARSE_ERROR),
        (b"<methodCall><params/></methodCall>", INVALID_REQUEST),
        (b"<html><body>hello</body></html>", INVALID_REQUEST),
        (
            xmlrpc.client.dumps(("x",), methodresponse=True).encode(),
            INVALID_REQUEST,
        ),
        (
            xmlrpc.client.dumps(xmlrpc.client.Fault(1, "x"), methodresponse=True).encode(),
            INVALID_REQUEST,
        ),
        (
            b"<methodCall><methodName>system.methodHelp</methodName><params><param>"
            b"<value><int>twelve</int></value></param></params></methodCall>",
            INVALID_REQUEST,
        ),
        (
            b"<methodCall><methodName>system.methodHelp</methodName><params><param>"
            b"<value><boolean>2</boolean></value></param></params></methodCall>",
            INVALID_REQUEST,
        ),
        (
            b"<methodCall><methodName>system.methodHelp</methodName><params><param>"
            b"<value><array><data><value>x</value></data></value></param></params></methodCall>",
            PARSE_ERROR,
        ),
    ],
)
def test_malformed_body_is_a_fault_never_a_500(
    live_server: LiveServer, body: bytes, code: int
) -> None:
    fault = fault_in(post_xml(live_server, body))
    assert fault.faultCode == code
    assert fault.faultString


def test_get_is_not_allowed(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/xmlrpc/v1")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


# --- introspection -----------------------------------------------------------------------------


def test_list_methods(live_server: LiveServer) -> None:
    with proxy(live_server) as client:
        names = client.system.listMethods()
    assert names == [
        "onetime-auth.createToken",
        "system.listMethods",
        "system.methodHelp",
        "system.methodSignature",
    ]


def test_method_help_and_signature(live_server: LiveServer) -> None:
    with proxy(live_server) as server:
        assert "auth_token" in server.system.methodHelp("onetime-auth.createToken")
        assert server.system.methodSignature("onetime-auth.createToken") == [
            ["string", "string", "string"]
        ]
        assert server.system.methodSignature("system.listMethods") == [["array"]]
        fault = fault_of(lambda: server.system.methodHelp("nope"))
    assert fault.faultCode == METHOD_NOT_FOUND


# --- hostile XML -------------------------------------------------------------------------------


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b"]>\n<methodCall><methodName>system.methodHelp</methodName><params><param>"
    b"<value><string>&lol9;</string></value></param></params></methodCall>"
)


def test_billion_laughs_is_refused_quickly_with_flat_memory(live_server: LiveServer) -> None:
    before = rss_kib()
    started = time.monotonic()
    fault = fault_in(post_xml(live_server, BILLION_LAUGHS))
    assert time.monotonic() - started < 1.0
    assert fault.faultCode == PARSE_ERROR
    assert "DTD" in fault.faultString
    assert rss_kib() - before < 20 * 1024


def test_external_entity_is_never_read(live_server: LiveServer, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    for declaration in (
        f'<!ENTITY xxe SYSTEM "file://{secret}">',
        f'<!ENTITY % xxe SYSTEM "file://{secret}"> %xxe;',
    ):
        body = (
            f'<?xml version="1.0"?><!DOCTYPE m [{declaration}]>'
            "<methodCall><methodName>system.methodHelp</methodName><params><param>"
            "<value><string>&xxe;</string></value></param></params></methodCall>"
        )
        response = post_xml(live_server, body)
        assert "TOP-SECRET-CONTENT" not in response.text
        assert fault_in(response).faultCode == PARSE_ERROR


FIFTY_MB = 50 * 1024 * 1024


def test_declared_50_mb_body_is_refused_before_it_is_sent(live_server: LiveServer) -> None:
    before = rss_kib()
    started = time.monotonic()
    with socket.create_connection((live_server.host, live_server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /xmlrpc/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
            + f"Content-Length: {FIFTY_MB}\r\n\r\n".encode()
            + b"<methodCall>"
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"over the 65536 byte limit" in answer
    assert time.monotonic() - started < 1.0
    assert rss_kib() - before < 20 * 1024


def test_streamed_50_mb_body_is_cut_off_at_the_cap(live_server: LiveServer) -> None:
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        chunk = b"<value><string>" + b"x" * 65_000 + b"</string></value>"
        yield b"<methodCall><methodName>system.listMethods</methodName><params>"
        while sent < FIFTY_MB:
            sent += len(chunk)
            yield chunk

    before = rss_kib()
    started = time.monotonic()
    # No Content-Length: chunked, so only reading the stream can find the size out.
    response = httpx.post(f"{live_server.url}/xmlrpc/v1", content=body(), timeout=30)
    assert response.status_code == 413
    assert time.monotonic() - started < 5.0
    assert rss_kib() - before < 20 * 1024

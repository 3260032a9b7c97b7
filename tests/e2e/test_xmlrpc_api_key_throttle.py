"""Wrong createToken API keys are counted per client address, in the database, so two
machines share the count; after too many, that address gets the 429 fault, right key or not,
while another address with the right key still gets its token (issue 21)."""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Iterator

import httpx
import pytest
from support import LiveServer, set_config
from web_support import API_KEY, add_person, enable_ttp

from printsrv.error_table import ERROR_TABLE
from printsrv.operations.installation import Installation, open_installation
from printsrv.people.throttle import LoginThrottled
from printsrv.people.tokens import ApiKeyRejected
from printsrv.platform.environment import Environment

ATTACKER, LMS = "203.0.113.7", "198.51.100.20"
LIMIT = 3


@pytest.fixture
def two_machines(installation: Installation, environment: Environment) -> Iterator[list[str]]:
    """Two servers on one database, each with its own process memory (config, caches), behind
    a trusted proxy on loopback that names the client in X-Forwarded-For."""
    enable_ttp(installation)
    add_person(installation, "janet")
    set_config(
        installation,
        {"web-login.ttp.apikey.max-failures": str(LIMIT), "server.trusted-proxies": "127.0.0.1"},
    )
    other = open_installation(environment)
    servers = [LiveServer(installation).start(), LiveServer(other).start()]
    try:
        yield [server.url for server in servers]
    finally:
        for server in servers:
            server.stop()
        other.db.dispose()


def create_token(url: str, api_key: str, *, client: str) -> object:
    """createToken through the proxy for `client`; the token, or the Fault (with the
    response's Retry-After as its `retry_after`)."""
    body = xmlrpc.client.dumps((api_key, "janet"), "onetime-auth.createToken")
    response = httpx.post(
        f"{url}/xmlrpc/v1",
        content=body,
        headers={
            "Content-Type": "text/xml",
            "X-Forwarded-For": client,
            "X-Forwarded-Proto": "https",
        },
    )
    assert response.status_code == 200, response.text
    try:
        return xmlrpc.client.loads(response.content)[0][0]
    except xmlrpc.client.Fault as fault:
        fault.retry_after = response.headers.get("retry-after")  # type: ignore[attr-defined]
        return fault


def test_wrong_keys_from_one_address_are_throttled_on_every_machine(
    two_machines: list[str],
) -> None:
    first, second = two_machines
    rejected, throttled = ERROR_TABLE[ApiKeyRejected].fault, ERROR_TABLE[LoginThrottled].fault
    assert ERROR_TABLE[LoginThrottled].status == 429
    # Failures spread over both machines add up.
    for n in range(LIMIT):
        answer = create_token((first, second)[n % 2], "guess-" + str(n) * 20, client=ATTACKER)
        assert isinstance(answer, xmlrpc.client.Fault) and answer.faultCode == rejected, answer

    for url in (first, second):
        answer = create_token(url, API_KEY, client=ATTACKER)  # even the right key
        assert isinstance(answer, xmlrpc.client.Fault), answer
        assert answer.faultCode == throttled and "Too many wrong API keys" in answer.faultString
        assert 0 < int(answer.retry_after) <= 900  # the window: web-login.throttle.window-secs

    # The LMS, at another address, is not locked out by someone else's guessing.
    assert isinstance(create_token(second, API_KEY, client=LMS), str)


def test_the_right_key_counts_nothing(two_machines: list[str]) -> None:
    first, _ = two_machines
    for _ in range(LIMIT + 2):
        assert isinstance(create_token(first, API_KEY, client=ATTACKER), str)

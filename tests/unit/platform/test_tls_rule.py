"""The one rule for credentials: over TLS, or from loopback (security.credentials_may_travel)."""

from __future__ import annotations

import pytest

from printsrv.errors import TlsRequired
from printsrv.platform.security import Client, credentials_may_travel, is_loopback, require_tls


def client(host: str, scheme: str) -> Client:
    return Client(host, 50000, scheme, "print.example.edu", 443, False)


@pytest.mark.parametrize(
    ("host", "scheme", "allowed"),
    [
        ("192.0.2.10", "https", True),
        ("192.0.2.10", "http", False),
        ("2001:db8::1", "http", False),
        ("127.0.0.1", "http", True),
        ("127.0.0.2", "http", True),
        ("::1", "http", True),
        ("::ffff:127.0.0.1", "http", True),  # IPv4 loopback on a dual-stack socket
        ("::ffff:192.0.2.10", "http", False),
        ("", "http", False),
        ("not-an-address", "http", False),
    ],
)
def test_credentials_travel_over_tls_or_on_loopback(host: str, scheme: str, allowed: bool) -> None:
    assert credentials_may_travel(client(host, scheme)) is allowed
    if allowed:
        require_tls(client(host, scheme), "The REST admin API")
    else:
        with pytest.raises(TlsRequired, match=r"^The REST admin API needs https"):
            require_tls(client(host, scheme), "The REST admin API")


def test_is_loopback_ignores_what_is_not_an_address() -> None:
    assert not is_loopback(None)
    assert not is_loopback("localhost")

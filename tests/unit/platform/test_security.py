"""Credentials, allowlists and trusted proxies (printsrv/platform/security.py)."""

from __future__ import annotations

import base64

import pytest

from printsrv.errors import NotAuthenticated
from printsrv.platform.security import (
    SecretHasher,
    address_in,
    derive_key,
    format_cidr_set,
    parse_basic_authorization,
    parse_cidr_set,
    resolve_client,
)


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


def test_derived_keys_differ_by_purpose_and_repeat_for_the_same_purpose() -> None:
    secret = b"x" * 40
    assert derive_key(secret, "a") == derive_key(secret, "a")
    assert derive_key(secret, "a") != derive_key(secret, "b")
    assert derive_key(secret, "a") != derive_key(b"y" * 40, "a")


def test_keyed_hash_matches_only_the_secret() -> None:
    hasher = SecretHasher(b"k" * 32)
    digest = hasher.digest("s3cret")
    assert "s3cret" not in digest
    assert hasher.matches("s3cret", digest)
    assert not hasher.matches("s3cret ", digest)
    assert not hasher.matches(None, digest)
    assert not SecretHasher(b"o" * 32).matches("s3cret", digest)


@pytest.mark.parametrize("digest", ["", None, "plaintext"])
def test_unset_or_foreign_digest_matches_nothing(digest: str | None) -> None:
    assert not SecretHasher(b"k" * 32).matches("", digest)


def test_basic_credentials_are_decoded_with_colons_in_the_password() -> None:
    creds = parse_basic_authorization(basic("jänet:pa:ss".encode()))
    assert (creds.username, creds.password) == ("jänet", "pa:ss")
    assert "pa:ss" not in repr(creds)


def test_basic_credentials_fall_back_to_latin1() -> None:
    creds = parse_basic_authorization(basic("j\xe4net:pw".encode("latin-1")))
    assert creds.username == "jänet"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer abc",
        "Basic",
        "Basic !!!notbase64",
        basic(b"nocolon"),
        basic(b":pw"),
        "Basic " + "A" * 5000,
    ],
)
def test_malformed_basic_headers_are_refused_with_a_reason(header: str | None) -> None:
    with pytest.raises(NotAuthenticated) as info:
        parse_basic_authorization(header)
    assert info.value.message


def test_cidr_sets_take_ipv4_ipv6_and_single_addresses() -> None:
    allowed = parse_cidr_set("10.0.0.0/8, 2001:db8::/32 192.168.1.7")
    assert address_in("10.1.2.3", allowed)
    assert address_in("2001:db8::1", allowed)
    assert address_in("192.168.1.7", allowed)
    assert not address_in("192.168.1.8", allowed)
    assert address_in("::ffff:10.9.9.9", allowed), "IPv4-mapped IPv6 counts as IPv4"
    assert not address_in("not-an-ip", allowed)
    assert not address_in(None, allowed)


@pytest.mark.parametrize("text", ["10.0.0.0/33", "300.1.1.1", "foo", "10.0.0.0/8,,bar"])
def test_bad_cidr_entries_are_named(text: str) -> None:
    with pytest.raises(ValueError, match="is not an IPv4 or IPv6"):
        parse_cidr_set(text)


def test_cidr_set_is_stored_in_a_canonical_form() -> None:
    assert format_cidr_set(" 10.0.0.0/8,  ::1 ") == "10.0.0.0/8, ::1"
    assert format_cidr_set("") == ""


def resolve(peer: str, headers: dict[str, str], trusted: str = "") -> object:
    return resolve_client(
        peer=(peer, 50000),
        server=("127.0.0.1", 8631),
        scheme="http",
        headers=headers,
        trusted_proxies=parse_cidr_set(trusted),
    )


def test_forwarded_headers_from_an_untrusted_peer_are_ignored() -> None:
    client = resolve(
        "203.0.113.5",
        {"host": "printsrv:8631", "x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "https"},
    )
    assert client.host == "203.0.113.5"
    assert client.scheme == "http"
    assert (client.server_name, client.server_port) == ("printsrv", 8631)
    assert not client.via_proxy


def test_trusted_proxy_names_the_rightmost_untrusted_hop_as_client() -> None:
    client = resolve(
        "10.0.0.2",
        {
            "host": "internal:8631",
            "x-forwarded-for": "6.6.6.6, 198.51.100.7, 10.0.0.1",
            "x-forwarded-proto": "https",
            "x-forwarded-host": "print.example.edu",
        },
        trusted="10.0.0.0/24",
    )
    assert client.host == "198.51.100.7", "a hop the client wrote itself is not believed"
    assert client.scheme == "https"
    assert (client.server_name, client.server_port) == ("print.example.edu", 443)
    assert client.via_proxy


def test_ipv6_host_headers_are_split_correctly() -> None:
    client = resolve("::1", {"host": "[::1]:9000"})
    assert (client.server_name, client.server_port) == ("::1", 9000)


def test_empty_trusted_set_trusts_nobody() -> None:
    assert not resolve("127.0.0.1", {"x-forwarded-for": "1.2.3.4"}).via_proxy
    assert not parse_cidr_set("") and len(parse_cidr_set("")) == 0

"""Who may call JSON-RPC: X-Auth-Key, the CIDR allowlist (void denies all), TLS off loopback."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY
from support import JSONRPC_KEY, LiveServer, jsonrpc_call, open_jsonrpc, set_config

from printsrv.operations.installation import Installation
from printsrv.platform import properties as config

STATUS = '{"jsonrpc":"2.0","id":"reference","method":"systemStatus"}'


def denied(response: httpx.Response) -> str:
    assert response.status_code == 200
    answer = response.json()
    assert answer["id"] == "reference"
    assert answer["result"] is False
    assert answer["error"]["code"] == -32600
    assert answer["error"]["message"] == "Access denied."
    assert answer["error"]["data"]["@type"] == "BASIC"
    return answer["error"]["data"]["reason"]


def serve(installation: Installation, **config: str) -> LiveServer:
    open_jsonrpc(installation)
    if config:
        set_config(installation, {k.replace("_", "."): v for k, v in config.items()})
    return LiveServer(installation).start()


def test_right_key_from_an_allowed_address_is_let_in(installation: Installation) -> None:
    server = serve(installation)
    try:
        answer = jsonrpc_call(server, STATUS).json()
        assert answer["result"]["data"]["value"] == "READY"
    finally:
        server.stop()


def test_wrong_missing_or_empty_key_is_refused_without_revealing_it(
    installation: Installation,
) -> None:
    server = serve(installation)
    try:
        for key in ("wrong", "", JSONRPC_KEY.upper(), JSONRPC_KEY[:-1]):
            reason = denied(jsonrpc_call(server, STATUS, key=key))
            assert "X-Auth-Key" in reason and "api.jsonrpc.secret-key" in reason
            assert JSONRPC_KEY not in reason
        no_header = httpx.post(f"{server.url}/jsonrpc/v1", content=STATUS)
        denied(no_header)
    finally:
        server.stop()


def test_unset_key_lets_nobody_in(installation: Installation) -> None:
    open_jsonrpc(installation)
    with installation.db.transaction() as session:
        config.unset_property(session, "api.jsonrpc.secret-key")
    server = LiveServer(installation).start()
    try:
        assert "not set" in denied(jsonrpc_call(server, STATUS, key=""))
    finally:
        server.stop()


def test_void_allowlist_denies_everyone(installation: Installation) -> None:
    open_jsonrpc(installation, allowed="")
    server = LiveServer(installation).start()
    try:
        reason = denied(jsonrpc_call(server, STATUS))
        assert "api.jsonrpc.ext.ip-addresses-allowed" in reason and "void" in reason
    finally:
        server.stop()


def test_address_outside_the_allowlist_is_refused(installation: Installation) -> None:
    open_jsonrpc(installation, allowed="10.0.0.0/8, 2001:db8::/32")
    server = LiveServer(installation).start()
    try:
        reason = denied(jsonrpc_call(server, STATUS))
        assert "127.0.0.1" in reason and "10.0.0.0" not in reason
    finally:
        server.stop()


def test_ipv6_loopback_client_in_an_ipv6_allowlist(installation: Installation) -> None:
    open_jsonrpc(installation, allowed="::1/128")
    server = LiveServer(installation, host="::1").start()
    try:
        assert jsonrpc_call(server, STATUS).json()["result"]["data"]["value"] == "READY"
    finally:
        server.stop()


def test_remote_client_needs_tls_through_a_trusted_proxy(installation: Installation) -> None:
    open_jsonrpc(installation, allowed="192.0.2.0/24")
    set_config(installation, {"server.trusted-proxies": "127.0.0.1"})
    server = LiveServer(installation).start()
    try:
        over_http = jsonrpc_call(server, STATUS, headers={"X-Forwarded-For": "192.0.2.10"})
        assert "https" in denied(over_http)
        over_https = jsonrpc_call(
            server, STATUS, headers={"X-Forwarded-For": "192.0.2.10", "X-Forwarded-Proto": "https"}
        )
        assert over_https.json()["result"]["data"]["value"] == "READY"
    finally:
        server.stop()


def test_forwarded_address_from_an_untrusted_peer_is_not_believed(
    installation: Installation,
) -> None:
    open_jsonrpc(installation, allowed="192.0.2.0/24")
    server = LiveServer(installation).start()
    try:
        spoofed = jsonrpc_call(
            server, STATUS, headers={"X-Forwarded-For": "192.0.2.10", "X-Forwarded-Proto": "https"}
        )
        assert "127.0.0.1" in denied(spoofed)
    finally:
        server.stop()


def test_refusals_are_counted_and_logged_without_the_key(
    installation: Installation, caplog: pytest.LogCaptureFixture
) -> None:
    def refused() -> float:
        value = REGISTRY.get_sample_value("printsrv_jsonrpc_access_denied_total", {"reason": "the"})
        return value or 0.0

    server = serve(installation)
    try:
        before = refused()
        denied(jsonrpc_call(server, STATUS, key="guessed-key-123"))
        assert refused() == before + 1
    finally:
        server.stop()
    assert "guessed-key-123" not in caplog.text
    assert any("access denied" in r.getMessage() for r in caplog.records)


def test_provisioning_methods_need_the_admin_switch(installation: Installation) -> None:
    server = serve(installation)
    try:
        reason = denied(
            jsonrpc_call(server, '{"jsonrpc":"2.0","id":"reference","method":"listUsers"}')
        )
        assert "api.jsonrpc.admin.enable" in reason
    finally:
        server.stop()

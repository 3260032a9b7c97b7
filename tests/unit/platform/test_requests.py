"""printsrv.http: what adapters read off a request, with or without a Starlette Request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import ClientDisconnect

from printsrv.errors import PayloadTooLarge
from printsrv.http import header_in, receive_body


def _scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/jsonrpc/v1", "headers": headers}


def _receiver(*messages: dict[str, Any]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def _body(scope: dict[str, Any], receive: Any, limit: int) -> bytes:
    return asyncio.run(receive_body(scope, receive, limit))


def test_header_in_finds_the_first_value_and_none_when_absent() -> None:
    scope = _scope([(b"x-auth-key", b"one"), (b"x-auth-key", b"two")])
    assert header_in(scope, b"x-auth-key") == "one"
    assert header_in(scope, b"x-request-id") is None


def test_a_body_sent_in_several_messages_is_joined_in_order() -> None:
    receive = _receiver(
        {"type": "http.request", "body": b'{"a":', "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b"1}", "more_body": False},
    )
    assert _body(_scope([]), receive, 100) == b'{"a":1}'


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    receive = _receiver()  # reading anything would fail: the queue is empty
    with pytest.raises(PayloadTooLarge, match="101 bytes is over the 100 byte limit"):
        _body(_scope([(b"content-length", b"101")]), receive, 100)


def test_a_client_that_lies_about_its_length_is_cut_off_at_the_limit() -> None:
    receive = _receiver(
        {"type": "http.request", "body": b"x" * 60, "more_body": True},
        {"type": "http.request", "body": b"x" * 60, "more_body": True},
        {"type": "http.request", "body": b"never read", "more_body": False},
    )
    with pytest.raises(PayloadTooLarge, match="over the 100 byte limit"):
        _body(_scope([(b"content-length", b"10")]), receive, 100)


def test_a_client_gone_mid_body_is_a_disconnect() -> None:
    receive = _receiver(
        {"type": "http.request", "body": b"part", "more_body": True},
        {"type": "http.disconnect"},
    )
    with pytest.raises(ClientDisconnect):
        _body(_scope([]), receive, 100)

"""JSON-RPC 2.0 framing at /jsonrpc/v1: the specification's own examples, SavaPage's envelope,
and hostile bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonrpcserver import Success
from support import LiveServer, jsonrpc_call, open_jsonrpc

from printsrv.operations.installation import Installation
from printsrv.rpc import jsonrpc_registry

# Framing does not depend on the back-end; the methods' tests run on both.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def spec_methods(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The demo methods the specification's examples call (section 7), registered for the test."""

    def subtract(context: Any, minuend: int, subtrahend: int) -> Any:
        return Success(minuend - subtrahend)

    def sum_(context: Any, *numbers: int) -> Any:
        return Success(sum(numbers))

    def anything(context: Any, *args: Any) -> Any:
        return Success(None)

    def get_data(context: Any) -> Any:
        return Success(["hello", 5])

    extra = {
        "subtract": subtract,
        "sum": sum_,
        "update": anything,
        "notify_hello": anything,
        "notify_sum": anything,
        "get_data": get_data,
    }
    for name, function in extra.items():
        monkeypatch.setitem(jsonrpc_registry.METHODS, name, function)
    yield


@pytest.fixture
def server(installation: Installation, spec_methods: None) -> Iterator[LiveServer]:
    open_jsonrpc(installation)
    live = LiveServer(installation).start()
    yield live
    live.stop()


NOTHING = None
# (name, request body as sent, expected answer in the specification's own words)
SPEC_EXAMPLES: list[tuple[str, str, Any]] = [
    (
        "positional 1",
        '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}',
        {"result": 19, "id": 1},
    ),
    (
        "positional 2",
        '{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}',
        {"result": -19, "id": 2},
    ),
    (
        "named 1",
        '{"jsonrpc": "2.0", "method": "subtract", "params": '
        '{"subtrahend": 23, "minuend": 42}, "id": 3}',
        {"result": 19, "id": 3},
    ),
    (
        "named 2",
        '{"jsonrpc": "2.0", "method": "subtract", "params": '
        '{"minuend": 42, "subtrahend": 23}, "id": 4}',
        {"result": 19, "id": 4},
    ),
    ("notification", '{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}', NOTHING),
    ("notification of unknown method", '{"jsonrpc": "2.0", "method": "foobar"}', NOTHING),
    (
        "non-existent method",
        '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}',
        {"error": -32601, "id": "1"},
    ),
    (
        "invalid JSON",
        '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
        {"error": -32700, "id": None},
    ),
    (
        "invalid request object",
        '{"jsonrpc": "2.0", "method": 1, "params": "bar"}',
        {"error": -32600, "id": None},
    ),
    (
        "batch, invalid JSON",
        '[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},'
        '{"jsonrpc": "2.0", "method"]',
        {"error": -32700, "id": None},
    ),
    ("empty array", "[]", {"error": -32600, "id": None}),
    ("invalid batch of one", "[1]", [{"error": -32600, "id": None}]),
    ("invalid batch", "[1,2,3]", [{"error": -32600, "id": None}] * 3),
    (
        "batch",
        """[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
     ]""",
        [
            {"result": 7, "id": "1"},
            {"result": 19, "id": "2"},
            {"error": -32600, "id": None},
            {"error": -32601, "id": "5"},
            {"result": ["hello", 5], "id": "9"},
        ],
    ),
    (
        "batch of notifications",
        """[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
     ]""",
        NOTHING,
    ),
]


def check_answer(answer: dict[str, Any], expected: dict[str, Any]) -> None:
    assert answer["jsonrpc"] == "2.0"
    assert answer["id"] == expected["id"] and type(answer["id"]) is type(expected["id"])
    if "result" in expected:
        assert answer["result"] == expected["result"]
        assert "error" not in answer
    else:
        # SavaPage's envelope: "result": false beside the error, data.@type BASIC.
        assert answer["result"] is False
        assert answer["error"]["code"] == expected["error"]
        assert isinstance(answer["error"]["message"], str) and answer["error"]["message"]
        assert answer["error"]["data"]["@type"] == "BASIC"
        assert answer["error"]["data"]["reason"]


@pytest.mark.parametrize(
    ("name", "body", "expected"), SPEC_EXAMPLES, ids=[e[0] for e in SPEC_EXAMPLES]
)
def test_specification_examples(server: LiveServer, name: str, body: str, expected: Any) -> None:
    response = jsonrpc_call(server, body)
    assert response.status_code == 200
    if expected is NOTHING:
        assert response.content == b""
        return
    answer = response.json()
    if isinstance(expected, list):
        assert isinstance(answer, list) and len(answer) == len(expected)
        # The specification lets a batch answer come in any order; ours keeps the request's.
        for one, want in zip(answer, expected, strict=True):
            check_answer(one, want)
    else:
        check_answer(answer, expected)


def test_system_status_answer_is_byte_for_byte_the_contracts(server: LiveServer) -> None:
    response = jsonrpc_call(server, '{"jsonrpc":"2.0","id":"reference","method":"systemStatus"}')
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": "reference",
        "result": {"data": {"@type": "enum", "value": "READY"}},
    }
    assert list(response.json()) == ["jsonrpc", "id", "result"]


@pytest.mark.parametrize("id_", ["reference", 7, -1, 3.5, None, "", "ü"])
def test_any_id_is_echoed_unchanged(server: LiveServer, id_: Any) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": id_, "method": "systemStatus"})
    assert jsonrpc_call(server, body).json()["id"] == id_


def test_api_version_in_params_is_accepted(server: LiveServer) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "systemStatus", "params": {"apiVersion": "1"}}
    assert jsonrpc_call(server, body).json()["result"]["data"]["value"] == "READY"


def test_unexpected_params_name_the_parameter(server: LiveServer) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "systemStatus", "params": {"bogus": 1}}
    error = jsonrpc_call(server, body).json()["error"]
    assert error["code"] == -32602 and "bogus" in error["data"]["reason"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json", -32700),
        (b'"a string"', -32600),
        (b"42", -32600),
        (b"null", -32600),
        (b'{"jsonrpc": "1.0", "method": "systemStatus", "id": 1}', -32600),
        (b'{"method": "systemStatus", "id": 1}', -32600),
        (b'{"jsonrpc": "2.0", "method": ["systemStatus"], "id": 1}', -32600),
        (b'{"jsonrpc": "2.0", "method": "systemStatus", "params": "x", "id": 1}', -32600),
        (b'{"jsonrpc": "2.0", "method": "systemStatus", "id": {"a": 1}}', -32600),
        (b'{"jsonrpc": "2.0", "method": "systemStatus", "id": 1, "extra": true}', -32600),
        (b'{"jsonrpc": "2.0", "method": "systemStatus", "id": NaN}', -32700),
        (b'{"jsonrpc": "2.0", "method": "systemStatus", "id": 1}\xff', -32700),
        (b"\xff\xfe{}", -32700),
        (b"[" * 100_000 + b"]" * 100_000, -32700),
        (b"", -32700),
    ],
)
def test_bad_bodies_get_an_error_object_never_a_500(
    server: LiveServer, body: bytes, code: int
) -> None:
    response = jsonrpc_call(server, body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["error"]["code"] == code, answer
    assert answer["result"] is False
    assert "Traceback" not in response.text


def test_oversized_body_is_413_with_an_error_object(server: LiveServer) -> None:
    response = jsonrpc_call(
        server,
        b'{"jsonrpc":"2.0","id":1,"method":"x","params":["' + b"a" * (10 * 1024 * 1024) + b'"]}',
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == -32600


def test_batch_over_the_cap_is_one_error(server: LiveServer) -> None:
    batch = [{"jsonrpc": "2.0", "id": i, "method": "systemStatus"} for i in range(101)]
    answer = jsonrpc_call(server, batch).json()
    assert isinstance(answer, dict)
    assert answer["error"]["code"] == -32600
    assert "api.jsonrpc.batch-max" in answer["error"]["data"]["reason"]
    answers = jsonrpc_call(server, batch[:100]).json()
    assert len(answers) == 100 and all(a["result"]["data"]["value"] == "READY" for a in answers)


def test_get_is_not_allowed(server: LiveServer) -> None:
    import httpx

    response = httpx.get(f"{server.url}/jsonrpc/v1")
    assert response.status_code == 405


def test_also_served_at_plain_jsonrpc(server: LiveServer) -> None:
    import httpx

    response = httpx.post(
        f"{server.url}/jsonrpc",
        headers={"X-Auth-Key": "7961b5ec-bee4-11e7-8731-406186940c49"},
        content='{"jsonrpc":"2.0","id":1,"method":"systemStatus"}',
    )
    assert response.json()["result"]["data"]["value"] == "READY"

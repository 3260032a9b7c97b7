"""printsrv.rpc.jsonrpc.PolledAnswers: which answers are kept per body, and that a kept
answer is given only while the method still gives the same result."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from printsrv.rpc import jsonrpc
from printsrv.rpc.jsonrpc_methods import INLINE_METHODS

BODY = b'{"jsonrpc":"2.0","id":1,"method":"systemStatus"}'


@pytest.fixture
def status(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """systemStatus answering whatever `status["value"]` says (no installation needed)."""
    current = {"value": "READY"}

    def fake_status(context: Any) -> dict[str, Any]:
        return {"data": {"@type": "enum", "value": current["value"]}}

    monkeypatch.setitem(INLINE_METHODS, "systemStatus", fake_status)
    return current


def _answer(polled: jsonrpc.PolledAnswers, body: bytes) -> bytes:
    """What the adapter does on a miss: parse, answer, encode, keep."""
    parsed = jsonrpc.parse_body(body)
    context = SimpleNamespace(snapshot={"api.jsonrpc.batch-max": 10})
    payload = jsonrpc.answer(parsed, context)  # type: ignore[arg-type]
    encoded = jsonrpc.encode(payload)
    polled.keep(body, parsed, payload, encoded)
    return encoded


def test_a_kept_answer_is_given_while_the_result_is_unchanged(status: dict[str, str]) -> None:
    polled = jsonrpc.PolledAnswers()
    assert polled.lookup(BODY, None) is None  # type: ignore[arg-type]
    encoded = _answer(polled, BODY)
    assert polled.lookup(BODY, None) == encoded  # type: ignore[arg-type]
    status["value"] = "MAINTENANCE"
    assert polled.lookup(BODY, None) is None, "a changed result is never answered from memory"  # type: ignore[arg-type]
    assert b"MAINTENANCE" in _answer(polled, BODY)


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsonrpc":"2.0","method":"systemStatus"}',  # a notification: nothing to answer
        b'[{"jsonrpc":"2.0","id":1,"method":"systemStatus"}]',  # a batch
        b'{"jsonrpc":"2.0","id":1,"method":"systemStatus","params":{"x":1}}',
        b'{"jsonrpc":"1.0","id":1,"method":"systemStatus"}',  # an error answer
        b'{"jsonrpc":"2.0","id":1,"method":["systemStatus"]}',  # unhashable method
    ],
)
def test_only_single_parameterless_successful_calls_are_kept(
    status: dict[str, str], body: bytes
) -> None:
    polled = jsonrpc.PolledAnswers()
    _answer(polled, body)
    assert polled.lookup(body, None) is None  # type: ignore[arg-type]


def test_the_memory_is_bounded(status: dict[str, str]) -> None:
    polled = jsonrpc.PolledAnswers()
    for n in range(polled.LIMIT + 10):
        _answer(polled, BODY.replace(b'"id":1', f'"id":{n}'.encode()))
    assert len(polled._entries) <= polled.LIMIT
    long_id = b'"id":"' + b"x" * polled.MAX_BODY + b'"'
    _answer(polled, BODY.replace(b'"id":1', long_id))
    assert polled.lookup(BODY.replace(b'"id":1', long_id), None) is None  # type: ignore[arg-type]

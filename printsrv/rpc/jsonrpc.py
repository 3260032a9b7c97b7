"""The JSON-RPC 2.0 adapter at /jsonrpc/v1 (and /jsonrpc).

jsonrpcserver does the per-request framing (method look-up, parameter binding, result and
error objects); this module does what is printsrv's own: the access check, the body cap,
batches (each element answered on its own, as the specification's examples require),
and rendering SavaPage's envelope, which puts `"result": false` beside every `error`.
The methods live in `jsonrpc_methods.py` and the modules beside it; `jsonrpc_registry.py`
assembles them.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from jsonrpcserver import dispatch_to_response
from jsonrpcserver.sentinels import NODATA
from prometheus_client import Counter
from starlette.types import Receive, Scope, Send

from printsrv.errors import PayloadTooLarge
from printsrv.http import client_in, header_in, installation_in, receive_body
from printsrv.platform.json_numbers import decimal_number
from printsrv.platform.properties import Snapshot
from printsrv.platform.security import Client, address_in, credentials_may_travel
from printsrv.platform.threads import in_thread
from printsrv.rpc.jsonrpc_methods import INLINE_METHODS, CallContext
from printsrv.rpc.jsonrpc_registry import METHODS

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
PARSE_ERROR, INVALID_REQUEST, INTERNAL_ERROR = -32700, -32600, -32603

ACCESS_DENIED = Counter(
    "printsrv_jsonrpc_access_denied",
    "JSON-RPC calls refused by the access check, by the setting to check",
    ["reason"],
)


def access_refusal(client: Client, auth_key: str | None, snapshot: Snapshot) -> str | None:
    """Why this caller may not use JSON-RPC, naming the setting to check; None lets it in.

    The address is checked before the key, so a caller from outside the allowlist learns
    nothing about the key. Reasons never contain the key or the allowlist.
    """
    allowed = snapshot.cidr_set("api.jsonrpc.ext.ip-addresses-allowed")
    if not allowed:
        return "api.jsonrpc.ext.ip-addresses-allowed is void: no client is allowed"
    if not address_in(client.host, allowed):
        return f"client address {client.host} is not in api.jsonrpc.ext.ip-addresses-allowed"
    if not credentials_may_travel(client):
        return "JSON-RPC needs https (directly, or through a trusted proxy) off loopback"
    secret = snapshot["api.jsonrpc.secret-key"]
    if not secret.is_set:
        return "api.jsonrpc.secret-key is not set: no key is accepted"
    if not secret.matches(auth_key):
        return "the X-Auth-Key header does not match api.jsonrpc.secret-key"
    return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_body(body: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity, numbers with a fraction as Decimal."""
    return _DECODER.decode(body.decode("utf-8"))


def _valid_id(value: Any) -> bool:
    # JSON-RPC 2.0: String, Number or Null (bool is an int in Python but not a JSON number).
    # A fraction goes back as a float, so one past a float's range (1e400) is refused: it
    # would go back as `Infinity`, which is not JSON (found by fuzzing).
    if isinstance(value, Decimal):
        return math.isfinite(float(value))
    return value is None or (isinstance(value, str | int) and not isinstance(value, bool))


def request_id(obj: Any) -> Any:
    """The id to answer with: the request's own when it can be detected, else null."""
    if isinstance(obj, dict) and _valid_id(obj.get("id")):
        id_ = obj.get("id")
        # Fractions were parsed as Decimal (for money in params); an id goes back as the
        # JSON number it came as.
        return float(id_) if isinstance(id_, Decimal) else id_
    return None


def shape_problem(obj: Any) -> str | None:
    """What makes `obj` not a JSON-RPC 2.0 request object, or None.

    A cheap check in place of jsonrpcserver's jsonschema validator, which costs more than
    half the throughput of a cheap method (docs/performance.md).
    """
    if not isinstance(obj, dict):
        return "a request must be a JSON object"
    if obj.get("jsonrpc") != "2.0":
        return 'member "jsonrpc" must be exactly "2.0"'
    if not isinstance(obj.get("method"), str):
        return 'member "method" must be a string'
    if "params" in obj and not isinstance(obj["params"], list | dict):
        return 'member "params" must be an array or an object'
    if "id" in obj and not _valid_id(obj["id"]):
        return 'member "id" must be a string, a number or null'
    unknown = set(obj) - {"jsonrpc", "method", "params", "id"}
    if unknown:
        return f"unknown member {sorted(unknown)[0]!r}"
    return None


def error_object(id_: Any, code: int, message: str, reason: str = "unknown") -> dict[str, Any]:
    """SavaPage's error envelope."""
    return {
        "jsonrpc": "2.0",
        "id": id_,
        "result": False,
        "error": {
            "code": code,
            "message": message,
            "data": {"@type": "BASIC", "reason": reason or "unknown"},
        },
    }


def _identity(value: Any) -> Any:
    return value


def _no_validation(value: Any) -> Any:
    return value


def answer_one(obj: Any, context: CallContext) -> dict[str, Any] | None:
    """The answer to one request object, or None for a notification."""
    problem = shape_problem(obj)
    if problem:
        return error_object(request_id(obj), INVALID_REQUEST, "Invalid Request", problem)
    params = obj.get("params")
    if isinstance(params, dict) and "apiVersion" in params:
        obj = {**obj, "params": {k: v for k, v in params.items() if k != "apiVersion"}}
    if isinstance(obj.get("id"), Decimal):
        obj = {**obj, "id": request_id(obj)}
    inline = polled_method(obj)
    if inline is not None:
        # The polled, parameterless methods skip jsonrpcserver's generic dispatch (method
        # look-up, signature binding, Either wrapping), which costs more than the method.
        if "id" not in obj:
            return None
        return {"jsonrpc": "2.0", "id": obj["id"], "result": inline(context)}
    response = dispatch_to_response(
        obj, METHODS, context=context, deserializer=_identity, validator=_no_validation
    )
    if response is None:
        return None
    if hasattr(response, "_value"):
        success = response._value
        return {"jsonrpc": "2.0", "id": success.id, "result": success.result}
    error = response._error
    data = error.data
    if isinstance(data, dict):
        return {
            "jsonrpc": "2.0",
            "id": error.id,
            "result": False,
            "error": {"code": error.code, "message": error.message, "data": data},
        }
    # jsonrpcserver's own errors carry text: the method name, the binding problem, or, for
    # an internal error, the exception's text, which is logged and not shown.
    reason = "unknown" if error.code == INTERNAL_ERROR or data is NODATA else str(data)
    return error_object(error.id, error.code, error.message, reason)


def answer(parsed: Any, context: CallContext) -> Any:
    """The answer to a parsed body: an object, a list, or None when nothing is to be said."""
    if isinstance(parsed, list):
        if not parsed:
            return error_object(None, INVALID_REQUEST, "Invalid Request", "empty batch")
        limit = context.snapshot["api.jsonrpc.batch-max"]
        if len(parsed) > limit:
            return error_object(
                None,
                INVALID_REQUEST,
                "Invalid Request",
                f"batch of {len(parsed)} is over api.jsonrpc.batch-max ({limit})",
            )
        answers = [a for a in (answer_one(obj, context) for obj in parsed) if a is not None]
        return answers or None
    return answer_one(parsed, context)


def polled_method(obj: Any) -> Callable[[CallContext], Any] | None:
    """The inline method `obj` calls without parameters (a polled call), or None."""
    if not isinstance(obj, dict) or obj.get("params"):
        return None
    name = obj.get("method")
    return INLINE_METHODS.get(name) if isinstance(name, str) else None


def _needs_thread(parsed: Any) -> bool:
    requests = parsed if isinstance(parsed, list) else [parsed]
    return any(
        not (
            isinstance(r, dict)
            and isinstance(r.get("method"), str)
            and r["method"] in INLINE_METHODS
        )
        for r in requests
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# Built once: json.dumps/json.loads with keyword arguments build a new encoder or decoder on
# every call, which costs more than encoding a systemStatus answer.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default)
_DECODER = json.JSONDecoder(parse_float=decimal_number, parse_constant=_refuse_constant)


def encode(payload: Any) -> bytes:
    """The body for `payload`; None (only notifications) is an empty body."""
    return b"" if payload is None else _ENCODER.encode(payload).encode("utf-8")


class PolledAnswers:
    """Encoded answers to polled calls (a parameterless inline method), by request body.

    A monitoring system sends the same bytes every few seconds; parsing them and encoding
    the answer cost more than the call. An entry keeps the method and the result it gave,
    and is used only while the method, called again, still gives that result: the answer
    is always current. Bounded: emptied when full (an attacker varying the id only churns
    it). Used from the event loop only.
    """

    LIMIT = 256
    MAX_BODY = 512

    def __init__(self) -> None:
        self._entries: dict[bytes, tuple[Callable[[CallContext], Any], Any, bytes]] = {}

    def lookup(self, body: bytes, context: CallContext) -> bytes | None:
        """The encoded answer to `body`, if it is a polled call whose result is unchanged."""
        entry = self._entries.get(body)
        if entry is None:
            return None
        method, result, encoded = entry
        return encoded if method(context) == result else None

    def keep(self, body: bytes, parsed: Any, payload: Any, encoded: bytes) -> None:
        """Remember `encoded` when `parsed` is one polled call that `payload` answers."""
        method = polled_method(parsed)
        if method is None or len(body) > self.MAX_BODY or not isinstance(payload, dict):
            return
        if "result" not in payload or "error" in payload:
            return
        if len(self._entries) >= self.LIMIT:
            self._entries.clear()
        self._entries[body] = (method, payload["result"], encoded)


_POLLED = PolledAnswers()


class JsonRpcEndpoint:
    """The ASGI app behind /jsonrpc/v1 and /jsonrpc.

    A plain ASGI app rather than a Starlette request/response function: monitoring polls
    systemStatus many times a second, and building Request and Response objects costs
    more than the call itself.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, status_code = await respond(scope, receive)
        await send(
            {
                "type": "http.response.start",
                "status": status_code,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def respond(scope: Scope, receive: Receive) -> tuple[bytes, int]:
    """The encoded answer and HTTP status for one POST: access check, body, dispatch."""
    installation = installation_in(scope)
    snapshot = installation.config.snapshot()
    client = client_in(scope)
    try:
        body = await receive_body(scope, receive, MAX_BODY)
    except PayloadTooLarge as error:
        return encode(error_object(None, INVALID_REQUEST, "Invalid Request", error.message)), 413
    refusal = access_refusal(client, header_in(scope, b"x-auth-key"), snapshot)
    if refusal:
        ACCESS_DENIED.labels(reason=refusal.split(" ", 1)[0]).inc()
        log.warning("JSON-RPC access denied for %s: %s", client.host, refusal)
        try:
            id_ = request_id(parse_body(body))
        except (ValueError, RecursionError):
            id_ = None
        return encode(error_object(id_, INVALID_REQUEST, "Access denied.", refusal)), 200
    context = CallContext(installation=installation, snapshot=snapshot, client=client)
    polled = _POLLED.lookup(body, context)
    if polled is not None:
        return polled, 200
    try:
        parsed = parse_body(body)
    except (ValueError, RecursionError) as error:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors; deep nesting is a RecursionError.
        reason = "body is not UTF-8" if isinstance(error, UnicodeDecodeError) else "invalid JSON"
        return encode(error_object(None, PARSE_ERROR, "Parse error", reason)), 200
    try:
        if _needs_thread(parsed):
            payload = await in_thread(answer, parsed, context)
        else:
            payload = answer(parsed, context)
    except Exception:
        # A JSON-RPC caller always gets its envelope, even for a bug of ours; the log has it.
        log.exception("JSON-RPC request failed")
        payload = error_object(request_id(parsed), INTERNAL_ERROR, "Internal error")
    encoded = encode(payload)
    _POLLED.keep(body, parsed, payload, encoded)
    return encoded, 200


endpoint = JsonRpcEndpoint()

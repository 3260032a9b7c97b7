"""REST answers: the contract's JSON envelope and the REST rendering of
the one error table (`printsrv/error_table.py`).

SavaPage's REST services answer `{"succes": true, "result": ...}` or
`{"succes": false, "error": "..."}` (sic: "succes"); printsrv keeps that spelling so existing
clients keep working, and uses the same shape for every REST error.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from printsrv import errors
from printsrv.accounts.idempotency import Reply
from printsrv.error_table import answer_for, retry_after

log = logging.getLogger(__name__)


def status_for(error: errors.PrintsrvError) -> int:
    """The HTTP status for a service error: its row of the one error table."""
    return answer_for(error).status


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class JsonAnswer(JSONResponse):
    """A JSON answer, byte for byte what JSONResponse sends, encoded by one shared encoder
    (`json.dumps` with these options builds a new encoder on every call)."""

    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content).encode("utf-8")


def success(result: Any | None = None, status_code: int = 200) -> JSONResponse:
    """`{"succes": true[, "result": ...]}`."""
    body: dict[str, Any] = {"succes": True}
    if result is not None:
        body["result"] = result
    return JsonAnswer(body, status_code=status_code)


def failure(message: str, status_code: int, headers: dict[str, str] | None = None) -> JSONResponse:
    """`{"succes": false, "error": message}`."""
    return JsonAnswer({"succes": False, "error": message}, status_code=status_code, headers=headers)


def replied(reply: Reply) -> Response:
    """An answer given under an Idempotency-Key, as first sent; `Idempotent-Replayed: true`
    when this request is a retry that gets it again."""
    headers = {"Idempotent-Replayed": "true"} if reply.replayed else None
    answer = reply.answer
    return Response(answer.body, answer.status_code, headers=headers, media_type="application/json")


async def handle_service_error(request: Request, exc: Exception) -> Response:
    """A service error in the envelope, with `WWW-Authenticate` on 401, `Retry-After` on 429/503."""
    assert isinstance(exc, errors.PrintsrvError)
    status = status_for(exc)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="printsrv", charset="UTF-8"'
    seconds = retry_after(exc)
    if seconds is not None:
        headers["Retry-After"] = str(seconds)
    return failure(exc.message, status, headers or None)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail
    if exc.status_code == 404:
        message = f"No REST service at {request.url.path}"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    return failure(message, exc.status_code, dict(exc.headers or {}))


async def handle_unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug: 500 in the envelope, and its traceback in the server log (once: the error
    ends here)."""
    log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return failure("Internal error; the server log has the details", 500)

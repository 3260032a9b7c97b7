"""REST answers: the contract's JSON envelope and the error table for the REST adapter.

SavaPage's REST services answer `{"succes": true, "result": ...}` or
`{"succes": false, "error": "..."}` (sic: "succes"); printsrv keeps that spelling so existing
clients keep working, and uses the same shape for every REST error.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from printsrv import errors
from printsrv.documents.convert import ConversionFailed
from printsrv.printing.charging import CreditExceeded
from printsrv.printing.errors import (
    CupsUnavailable,
    JobNotFound,
    OptionRejected,
    PrinterNotFound,
    PrintingError,
    SubmitFailed,
)

RETRY_AFTER_SECONDS = 5

# Walked along the exception's MRO, so the most specific class wins.
ERROR_STATUS: dict[type[errors.PrintsrvError], int] = {
    errors.PrintsrvError: 400,
    errors.InvalidInput: 400,
    errors.ConfigError: 400,
    errors.NotAuthenticated: 401,
    errors.NotAllowed: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    ConversionFailed: 415,
    CreditExceeded: 402,
    # CUPS, the server behind us, answered with an error: a bad gateway, not bad input.
    # The subclasses are listed too: PrintingError comes first in their MRO.
    PrintingError: 502,
    SubmitFailed: 502,
    OptionRejected: 400,
    PrinterNotFound: 404,
    JobNotFound: 404,
    CupsUnavailable: 503,
    errors.ServiceUnavailable: 503,
    errors.DatabaseUnavailable: 503,
    errors.UnderMaintenance: 503,
    errors.TlsRequired: 403,
}


def status_for(error: errors.PrintsrvError) -> int:
    """The HTTP status for a service error."""
    for cls in type(error).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return 500


def success(result: Any | None = None, status_code: int = 200) -> JSONResponse:
    """`{"succes": true[, "result": ...]}`."""
    body: dict[str, Any] = {"succes": True}
    if result is not None:
        body["result"] = result
    return JSONResponse(body, status_code=status_code)


def failure(message: str, status_code: int, headers: dict[str, str] | None = None) -> JSONResponse:
    """`{"succes": false, "error": message}`."""
    return JSONResponse(
        {"succes": False, "error": message}, status_code=status_code, headers=headers
    )


async def handle_service_error(request: Request, exc: Exception) -> Response:
    """A service error in the envelope, with `WWW-Authenticate` on 401, `Retry-After` on 503."""
    assert isinstance(exc, errors.PrintsrvError)
    status = status_for(exc)
    headers = None
    if status == 401:
        headers = {"WWW-Authenticate": 'Basic realm="printsrv", charset="UTF-8"'}
    elif status == 503:
        # Maintenance says how long to stay away; an outage of a part, a few seconds.
        headers = {"Retry-After": str(getattr(exc, "retry_after", RETRY_AFTER_SECONDS))}
    return failure(exc.message, status, headers)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail
    if exc.status_code == 404:
        message = f"No REST service at {request.url.path}"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    return failure(message, exc.status_code, dict(exc.headers or {}))


async def handle_unexpected_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this answer, so the server logs the traceback once.
    return failure("Internal error; the server log has the details", 500)


EXCEPTION_HANDLERS = {
    errors.PrintsrvError: handle_service_error,
    HTTPException: handle_http_error,
    Exception: handle_unexpected_error,
}

"""The one table from service errors to every adapter's answer.

Each error class printsrv raises has exactly one row here: its REST status (which the web
app's error page shares), its JSON-RPC error code and short message, its XML-RPC faultCode
and the heading of its web page. The adapters render from `answer_for(error)` and from
nothing else, so a new error class is decided once, for every door at the same time;
`tests/unit/test_error_table.py` fails until it has its row.

A row is found for the error's own class; an error of a class without a row (a subclass a
test defines, say) gets the row of the nearest class in its MRO.

The XML-RPC fault codes are printsrv's own; README.md lists them for LMS-plugin authors.
"""

from __future__ import annotations

from dataclasses import dataclass

from printsrv import errors
from printsrv.documents.convert import ConversionFailed
from printsrv.documents.convert_to import ConversionTimedOut, ConverterBusy, DamagedDocument
from printsrv.jobs.service import JobGone, JobKeyNotFound
from printsrv.jobs.tokens import InvalidJobToken
from printsrv.operations.installation import NotInstalled, WrongSecret
from printsrv.people.admin_logins import AdminLoginFailed
from printsrv.people.logins import LoginFailed
from printsrv.people.throttle import LoginThrottled
from printsrv.people.tokens import (
    ApiKeyRejected,
    TokenError,
    TokenExpired,
    TokenInvalid,
    TokenUsed,
    TtpLoginDisabled,
    UserDisabled,
)
from printsrv.printing.access import PrintingDenied
from printsrv.printing.charging import AccountBlocked, CreditExceeded
from printsrv.printing.errors import (
    CupsUnavailable,
    JobNotFound,
    OptionRejected,
    PrinterNotFound,
    PrintingError,
    SubmitFailed,
)
from printsrv.printing.rules import PrintRefused, RuleNotFound
from printsrv.release.errors import NotIdentified, StationThrottled

__all__ = ["ERROR_TABLE", "ErrorAnswer", "answer_for", "retry_after"]

# How long a client should wait after a part was away, unless the error says (maintenance
# takes minutes; a database restart, seconds).
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class ErrorAnswer:
    """How every adapter answers one kind of service error."""

    status: int  # REST, and the web app's error page
    jsonrpc: tuple[int, str]  # JSON-RPC error code and short message
    fault: int  # XML-RPC faultCode
    heading: str = "Sorry"  # the web error page's heading


INTERNAL = (-32603, "Internal error")
INVALID_PARAMS = (-32602, "Invalid params")
ACCESS_DENIED = (-32600, "Access denied.")
INVALID_REQUEST = (-32600, "Invalid Request")
NOT_ALLOWED = (-32003, "Not allowed")
NOT_FOUND = (-32001, "Not found")
CONFLICT = (-32002, "Conflict")
UNAVAILABLE = (-32603, "Service unavailable")
PRINTING_FAILED = (-32603, "Printing failed")

ERROR_TABLE: dict[type[errors.PrintsrvError], ErrorAnswer] = {
    # Any other service error: a refusal, not a crash.
    errors.PrintsrvError: ErrorAnswer(400, INTERNAL, 1),
    # A value from outside is refused.
    errors.InvalidInput: ErrorAnswer(400, INVALID_PARAMS, 2),
    errors.ConfigError: ErrorAnswer(400, INVALID_PARAMS, 2),
    NotInstalled: ErrorAnswer(400, INVALID_PARAMS, 2),
    WrongSecret: ErrorAnswer(400, INVALID_PARAMS, 2),
    OptionRejected: ErrorAnswer(400, INVALID_PARAMS, 2),
    ConversionFailed: ErrorAnswer(415, INVALID_PARAMS, 2),
    # convert-to tells a damaged input from an unsupported one (a print upload does not).
    DamagedDocument: ErrorAnswer(422, INVALID_PARAMS, 2),
    # Who is calling is not established.
    errors.NotAuthenticated: ErrorAnswer(401, ACCESS_DENIED, 3),
    LoginFailed: ErrorAnswer(401, ACCESS_DENIED, 3),
    AdminLoginFailed: ErrorAnswer(401, ACCESS_DENIED, 3),
    TokenError: ErrorAnswer(401, ACCESS_DENIED, 3),
    TokenInvalid: ErrorAnswer(401, ACCESS_DENIED, 3),
    TokenExpired: ErrorAnswer(401, ACCESS_DENIED, 3),
    TokenUsed: ErrorAnswer(401, ACCESS_DENIED, 3),
    ApiKeyRejected: ErrorAnswer(401, ACCESS_DENIED, 4),
    # A release station: an unknown card, a wrong PIN, a locked user (one answer for all).
    NotIdentified: ErrorAnswer(401, ACCESS_DENIED, 3, "Not recognised"),
    # The caller is known, and may not do this.
    errors.NotAllowed: ErrorAnswer(403, NOT_ALLOWED, 5),
    PrintingDenied: ErrorAnswer(403, NOT_ALLOWED, 5),
    AccountBlocked: ErrorAnswer(403, NOT_ALLOWED, 5),
    CreditExceeded: ErrorAnswer(402, NOT_ALLOWED, 5),
    # A print rule refuses the print: the request was understood, its content is refused.
    PrintRefused: ErrorAnswer(422, NOT_ALLOWED, 5, "Print refused"),
    LoginThrottled: ErrorAnswer(429, NOT_ALLOWED, 5),
    StationThrottled: ErrorAnswer(429, NOT_ALLOWED, 5, "Too many attempts"),
    TtpLoginDisabled: ErrorAnswer(403, NOT_ALLOWED, 6),
    UserDisabled: ErrorAnswer(403, NOT_ALLOWED, 7),
    errors.TlsRequired: ErrorAnswer(403, NOT_ALLOWED, 14, "A secure connection is required"),
    InvalidJobToken: ErrorAnswer(403, NOT_ALLOWED, 5),
    # The named thing is missing, or its state forbids the change.
    errors.NotFound: ErrorAnswer(404, NOT_FOUND, 8),
    JobKeyNotFound: ErrorAnswer(404, NOT_FOUND, 8),
    RuleNotFound: ErrorAnswer(404, NOT_FOUND, 8),
    # A job's results were kept for api.jobs.result-ttl-secs and are gone.
    JobGone: ErrorAnswer(410, NOT_FOUND, 8),
    errors.Conflict: ErrorAnswer(409, CONFLICT, 9),
    errors.PayloadTooLarge: ErrorAnswer(413, INVALID_REQUEST, 10),
    # A part printsrv depends on is away: nothing changed, try again shortly.
    errors.ServiceUnavailable: ErrorAnswer(503, UNAVAILABLE, 11),
    errors.DatabaseUnavailable: ErrorAnswer(503, UNAVAILABLE, 11),
    errors.UnderMaintenance: ErrorAnswer(503, UNAVAILABLE, 13, "Under maintenance"),
    ConverterBusy: ErrorAnswer(503, UNAVAILABLE, 11, "Busy"),
    # A conversion ran out of its time: the server gave up, the input may be fine.
    ConversionTimedOut: ErrorAnswer(504, INTERNAL, 1, "Too slow"),
    # CUPS, the server behind printsrv, failed: a bad gateway, not bad input.
    PrintingError: ErrorAnswer(502, PRINTING_FAILED, 12),
    SubmitFailed: ErrorAnswer(502, PRINTING_FAILED, 12),
    CupsUnavailable: ErrorAnswer(503, PRINTING_FAILED, 12),
    PrinterNotFound: ErrorAnswer(404, PRINTING_FAILED, 12),
    JobNotFound: ErrorAnswer(404, PRINTING_FAILED, 12),
}


def answer_for(error: errors.PrintsrvError) -> ErrorAnswer:
    """The row of the error's class, or of the nearest class in its MRO that has one."""
    for cls in type(error).__mro__:
        answer = ERROR_TABLE.get(cls)
        if answer is not None:
            return answer
    return ERROR_TABLE[errors.PrintsrvError]


def retry_after(error: errors.PrintsrvError) -> int | None:
    """Seconds for `Retry-After` when the error says "try again later" (429, 503), else None."""
    if answer_for(error).status not in (429, 503):
        return None
    return int(getattr(error, "retry_after", RETRY_AFTER_SECONDS))

"""The release station page at /release/{printer}: a tablet or kiosk next to a printer.

Handlers are thin, as in ``views.py``: call one service of ``printsrv.release.stations``
(handing it a reader for the form, which it reads only once the client has passed the
station allowlist), render ``station.html``. The page needs no script and no mouse: a
keyboard-wedge card reader types the number and Enter into the focused card field.

The station forgets a person ``release.station.idle-secs`` after their last input:
identifying starts the time, "More time" starts it again, Print and Done end the session
at once, all of it on the server. The person's page says how long is left. Without a
script (the Content-Security-Policy allows none), it changes by reloading itself with a
meta refresh: ``WARN_SECS`` before the end, to a warning with "More
time" in the focus (Enter or Space extends), and at the end, to the card field, when the
server has forgotten the person anyway. Showing the page is no input, so neither reload
extends anything.

Two cookies, both HttpOnly and limited to /release: the identification form's CSRF token
(double-submitted, as the login form's), and the station session's id.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Final
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from printsrv import errors
from printsrv.accounts.overview import display_amount
from printsrv.error_table import answer_for, retry_after
from printsrv.http import client_of, installation_of
from printsrv.people.sessions import is_well_formed, new_secret
from printsrv.release import stations
from printsrv.release.held import Released
from printsrv.web.views import SECURITY_HEADERS, read_form, status_for, templates

__all__ = ["identify", "leave", "more_time", "print_documents", "station"]

COOKIE_PATH: Final = "/release"
STATION_COOKIE: Final = "printsrv_station"
STATION_CSRF_COOKIE: Final = "printsrv_station_csrf"
DONE_REFRESH_SECS: Final = 8  # the thank-you page returns to the form on its own
# The warning comes this long before the sign-out: WCAG 2.2.1 gives a person at least 20
# seconds to ask for more time (with idle-secs under this, it shows from the start).
WARN_SECS: Final = 20

templates.env.filters["price"] = display_amount


def _url(printer: str) -> str:
    return "/release/" + quote(printer, safe="")


def _cookie(request: Request, response: Response, name: str, value: str | None) -> None:
    secure = client_of(request).scheme == "https"
    if value is None:
        response.delete_cookie(
            name, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure
        )
    else:
        response.set_cookie(
            name, value, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure
        )


def _render(request: Request, printer: str, status_code: int = 200, **context: Any) -> Response:
    values: dict[str, Any] = {
        "printer": printer,
        "station_url": _url(printer),
        "person": None,
        "outcome": None,
        "message": None,
        "csrf_token": "",
        "idle_secs": 0,
        "seconds_left": 0,
        "warning": False,
        "warn_secs": WARN_SECS,
        "refresh_secs": 0,
        **context,
    }
    return templates.TemplateResponse(
        request, "station.html", values, status_code=status_code, headers=SECURITY_HEADERS
    )


def _form_page(
    request: Request, printer: str, *, message: str | None = None, status_code: int = 200
) -> Response:
    """The identification form, its CSRF token double-submitted in a cookie."""
    csrf = request.cookies.get(STATION_CSRF_COOKIE)
    if not is_well_formed(csrf):
        csrf = new_secret()
    response = _render(
        request,
        printer,
        status_code,
        message=message,
        csrf_token=csrf,
        # A refusal does not stay on the screen for the next person.
        refresh_secs=DONE_REFRESH_SECS if message else 0,
    )
    _cookie(request, response, STATION_CSRF_COOKIE, csrf)
    return response


def _error_page(request: Request, error: errors.PrintsrvError) -> Response:
    response = templates.TemplateResponse(
        request,
        "error.html",
        {"message": error.message, "heading": answer_for(error).heading},
        status_code=status_for(error),
        headers=SECURITY_HEADERS,
    )
    seconds = retry_after(error)
    if seconds is not None:
        response.headers["Retry-After"] = str(seconds)
    return response


def _see_page(printer: str) -> Response:
    return RedirectResponse(_url(printer), status_code=303, headers=SECURITY_HEADERS)


async def station(request: Request) -> Response:
    """GET /release/{printer}: the identification form, or the person's held documents."""
    printer = request.path_params["printer"]
    try:
        page = await stations.station_page(
            installation_of(request),
            printer=printer,
            client=client_of(request),
            session_id=request.cookies.get(STATION_COOKIE),
        )
    except errors.PrintsrvError as error:
        return _error_page(request, error)
    if page.person is None:
        response = _form_page(request, page.printer)
        if STATION_COOKIE in request.cookies:
            _cookie(request, response, STATION_COOKIE, None)
        return response
    warning = page.seconds_left <= WARN_SECS
    return _render(
        request,
        page.printer,
        person=page.person,
        idle_secs=page.idle_secs,
        seconds_left=page.seconds_left,
        warning=warning,
        # Back at the warning's time to show it; once shown, at the sign-out.
        refresh_secs=page.seconds_left if warning else page.seconds_left - WARN_SECS,
    )


async def identify(request: Request) -> Response:
    """POST /release/{printer}/identify: a card number, or a user name and PIN."""
    printer = request.path_params["printer"]
    try:
        session_id = await stations.identify_at_station(
            installation_of(request),
            printer=printer,
            client=client_of(request),
            read_form=partial(read_form, request),
            csrf_cookie=request.cookies.get(STATION_CSRF_COOKIE),
        )
    except (errors.InvalidInput, errors.NotAuthenticated, errors.NotAllowed) as refusal:
        shown_on_form = (
            not isinstance(refusal, errors.NotAllowed)
            or refusal.message == stations.CSRF_REFUSED
            or answer_for(refusal).status == 429
        )
        if not shown_on_form:
            # Not a station, no TLS, or the printer is closed to this person.
            return _error_page(request, refusal)
        response = _form_page(
            request, printer, message=refusal.message, status_code=status_for(refusal)
        )
        seconds = retry_after(refusal)
        if seconds is not None:
            response.headers["Retry-After"] = str(seconds)
        return response
    except errors.PrintsrvError as error:
        return _error_page(request, error)
    response = _see_page(printer)
    _cookie(request, response, STATION_COOKIE, session_id)
    return response


async def print_documents(request: Request) -> Response:
    """POST /release/{printer}/print: release one document or all, then forget the person."""
    printer = request.path_params["printer"]
    try:
        outcome: list[Released] | None = await stations.release_at_station(
            installation_of(request),
            printer=printer,
            client=client_of(request),
            session_id=request.cookies.get(STATION_COOKIE),
            read_form=partial(read_form, request),
        )
    except errors.PrintsrvError as error:
        return _error_page(request, error)
    if outcome is None:
        return _see_page(printer)  # nobody here any more: the form
    response = _render(request, printer, outcome=outcome, refresh_secs=DONE_REFRESH_SECS)
    _cookie(request, response, STATION_COOKIE, None)
    return response


async def leave(request: Request) -> Response:
    """POST /release/{printer}/leave: "Done": forget the person now."""
    printer = request.path_params["printer"]
    try:
        await stations.leave_station(
            installation_of(request),
            printer=printer,
            client=client_of(request),
            session_id=request.cookies.get(STATION_COOKIE),
            read_form=partial(read_form, request),
        )
    except errors.PrintsrvError as error:
        return _error_page(request, error)
    response = _see_page(printer)
    _cookie(request, response, STATION_COOKIE, None)
    return response


async def more_time(request: Request) -> Response:
    """POST /release/{printer}/more: "More time": start the person's time again, then
    show their page (or the card field, when the station has forgotten them already)."""
    printer = request.path_params["printer"]
    try:
        await stations.more_time_at_station(
            installation_of(request),
            printer=printer,
            client=client_of(request),
            session_id=request.cookies.get(STATION_COOKIE),
            read_form=partial(read_form, request),
        )
    except errors.PrintsrvError as error:
        return _error_page(request, error)
    return _see_page(printer)

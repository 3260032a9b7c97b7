"""The web app's handlers: read the form, check CSRF, call one service, render a page.

Pages are server-rendered Jinja2 templates (`templates/`), styled by one local stylesheet
(`static/style.css`), with no script and nothing from another site. Every response carries
a strict Content-Security-Policy and `Cache-Control: no-store`; cookies are HttpOnly,
SameSite=Lax, limited to /user, and Secure when the client came over https (directly or
through a trusted proxy). Service errors become a page through the one error table
(`printsrv/error_table.py`).

Every handler is a `user_view`, which puts the web app's two gates in front of it: TLS off
loopback (every request carries a password, a token, a session or a CSRF cookie), and
maintenance (users are kept out, except to log out).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from printsrv import errors
from printsrv.accounts import actions
from printsrv.accounts.overview import AccountOverview, account_overview
from printsrv.error_table import answer_for, retry_after
from printsrv.http import client_of, installation_of, read_body
from printsrv.operations.status import keep_users_out_in_maintenance
from printsrv.people import logins, sessions
from printsrv.people.models import User
from printsrv.people.sessions import CSRF_COOKIE, SESSION_COOKIE, ActiveSession
from printsrv.people.throttle import LoginThrottled
from printsrv.platform.models import utcnow
from printsrv.platform.security import require_tls
from printsrv.platform.threads import in_thread
from printsrv.printing.history import DocumentView, PrintView, user_documents, user_prints
from printsrv.printing.release import ReleaseChoices, release_choices, release_from_form

COOKIE_PATH = "/user"
FORM_LIMIT = 16 * 1024  # the login forms hold a few short fields
MAX_FORM_FIELDS = 20
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
CSRF_REFUSED = "This form has expired. Please reload the page and try again."


def status_for(error: errors.PrintsrvError) -> int:
    """The status of the page that shows a service error: its row of the one error table.

    A page never answers 401: that status asks for HTTP authentication, and a browser
    would open its Basic-auth dialog instead of showing the login form.
    """
    status = answer_for(error).status
    return 403 if status == 401 else status


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("printsrv.web", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,  # a typo in a template fails a test, not silently
)
_env.filters["when"] = _when
templates = Jinja2Templates(env=_env)


# --- helpers ----------------------------------------------------------------------------------


def _secure(request: Request) -> bool:
    return client_of(request).scheme == "https"


def _set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def _clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, httponly=True, samesite="lax", secure=_secure(request)
    )


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    return templates.TemplateResponse(
        request, name, context, status_code=status_code, headers=SECURITY_HEADERS
    )


def _see_other(path: str = "/user") -> Response:
    # 303: after a POST the browser GETs the page, so reloading it does not post again.
    return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)


def _login_page(
    request: Request,
    *,
    message: str | None = None,
    status_code: int = 200,
    user_name: str = "",
    stale_session: bool = False,
) -> Response:
    """The password login form, with a CSRF token double-submitted in a cookie.

    `stale_session` drops a session cookie that no longer names a live session.
    """
    csrf = request.cookies.get(CSRF_COOKIE)
    if not sessions.is_well_formed(csrf):
        csrf = sessions.new_secret()
    assert csrf is not None
    response = _page(
        request,
        "login.html",
        {"message": message, "csrf_token": csrf, "user_name": user_name},
        status_code,
    )
    _set_cookie(request, response, CSRF_COOKIE, csrf)
    if stale_session:
        _clear_cookie(request, response, SESSION_COOKIE)
    return response


def _with_retry_after(response: Response, error: errors.PrintsrvError) -> Response:
    seconds = retry_after(error)
    if seconds is not None:
        response.headers["Retry-After"] = str(seconds)
    return response


def _error_page(request: Request, error: errors.PrintsrvError) -> Response:
    heading = answer_for(error).heading
    response = _page(
        request, "error.html", {"message": error.message, "heading": heading}, status_for(error)
    )
    return _with_retry_after(response, error)


def _refused(request: Request, refusal: errors.PrintsrvError, *, user_name: str = "") -> Response:
    """The login form again, saying why (one message per login method), 403 or 429."""
    response = _login_page(
        request, message=refusal.message, status_code=status_for(refusal), user_name=user_name
    )
    return _with_retry_after(response, refusal)


def _logged_in(request: Request, result: logins.LoggedIn) -> Response:
    response = _see_other()
    _set_cookie(request, response, SESSION_COOKIE, result.session_id)
    return response


async def read_form(
    request: Request, *, limit: int = FORM_LIMIT, max_fields: int = MAX_FORM_FIELDS
) -> dict[str, str]:
    """The submitted form's text fields, refusing oversized or overfull forms.

    Raises PayloadTooLarge past `limit` bytes and InvalidInput for a form of more than
    `max_fields` fields or that cannot be read; a repeated field keeps its last value.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        try:
            form = await request.form(max_files=0, max_fields=max_fields, max_part_size=limit)
        except HTTPException as error:
            raise errors.InvalidInput(f"The form could not be read: {error.detail}") from None
        return {key: value for key, value in form.items() if isinstance(value, str)}
    body = await read_body(request, limit)
    try:
        pairs = parse_qsl(
            body.decode("utf-8", "replace"),
            keep_blank_values=True,
            max_num_fields=max_fields,
        )
    except ValueError:
        raise errors.InvalidInput("The form has too many fields") from None
    return dict(pairs)


Handler = Callable[[Request], Awaitable[Response]]


def user_view(*, open_in_maintenance: bool = False) -> Callable[[Handler], Handler]:
    """A web-app handler behind the gates, its service errors rendered as an error page.

    The gates run before the handler reads anything: TLS off loopback (403, so no
    password, token or session is used over plain HTTP), then maintenance (503 with
    `Retry-After`). `open_in_maintenance` lets a handler through maintenance: only
    logging out, which ends a session and so keeps a shared computer safe.
    """

    def decorate(handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            try:
                require_tls(client_of(request), "The web app")
                if not open_in_maintenance:
                    keep_users_out_in_maintenance(installation_of(request).config.snapshot())
                return await handler(request)
            except errors.PrintsrvError as error:
                return _error_page(request, error)

        wrapped.__name__ = handler.__name__
        wrapped.__doc__ = handler.__doc__
        return wrapped

    return decorate


# --- handlers ---------------------------------------------------------------------------------


def _load_page(request: Request) -> tuple[ActiveSession | None, AccountOverview | None]:
    installation = installation_of(request)
    with installation.db.read() as session:
        active = sessions.find_session(session, request.cookies.get(SESSION_COOKIE))
        if active is None:
            return None, None
        return active, account_overview(session, active.user_name)


def _prints(
    request: Request, active: ActiveSession
) -> tuple[list[DocumentView], list[PrintView], ReleaseChoices]:
    installation = installation_of(request)
    expiry_hours = installation.config.snapshot()["release.hold-hours"]
    with installation.db.read() as session:
        return (
            user_documents(
                session, active.user_id, limit=10, expiry_hours=expiry_hours, now=utcnow()
            ),
            user_prints(session, active.user_id, limit=10),
            release_choices(session, session.get_one(User, active.user_id)),
        )


async def _home_page(
    request: Request,
    active: ActiveSession,
    *,
    overview: AccountOverview | None = None,
    status_code: int = 200,
    **messages: object,
) -> Response:
    """The user's page; ``messages`` sets the notices, problems and form values shown."""
    if overview is None:
        _, overview = await in_thread(_load_page, request)
    documents, prints, choices = await in_thread(_prints, request, active)
    context = {
        "user": active,
        "account": overview,
        "documents": documents,
        "prints": prints,
        "printers": choices,
        "notice": None,
        "problem": None,
        "form": None,
        "release_notice": None,
        "release_problem": None,
        **messages,
    }
    return _page(request, "home.html", context, status_code=status_code)


def _renew_if_due(request: Request, active: ActiveSession) -> None:
    installation = installation_of(request)
    settings = logins.LoginSettings.from_config(installation.config.snapshot())
    remaining = active.expires_at - utcnow()
    if remaining < settings.idle / 2:
        with installation.db.transaction() as session:
            sessions.renew_session(
                session, request.cookies.get(SESSION_COOKIE, ""), idle=settings.idle
            )


TRANSFER_DONE = "Transfer done."
RELEASE_DONE = "Sent to the printer. It is listed under your prints."
WAITING_FOR_APPROVAL = "Waiting for approval"


@user_view()
async def home(request: Request) -> Response:
    """GET /user: the user's page, or the login form; POST /user: log in with a token."""
    if request.method == "POST":
        return await token_login(request)
    active, overview = await in_thread(_load_page, request)
    if active is None:
        return _login_page(request, stale_session=SESSION_COOKIE in request.cookies)
    await in_thread(_renew_if_due, request, active)
    done = request.query_params.get("done")
    return await _home_page(
        request,
        active,
        overview=overview,
        notice=TRANSFER_DONE if done == "transfer" else None,
        release_notice=RELEASE_DONE if done == "release" else None,
    )


async def _logged_in_form(request: Request) -> tuple[dict[str, str], ActiveSession | None]:
    """The posted form and the session it comes from (None: not logged in, go to the login).

    Raises NotAllowed when the form does not carry the session's CSRF token, before
    anything is done.
    """
    form = await read_form(request)
    active = await in_thread(_find_active, request)
    if active is not None and not sessions.csrf_matches(active.csrf_token, form.get("csrf_token")):
        raise errors.NotAllowed(CSRF_REFUSED)
    return form, active


@user_view()
async def transfer(request: Request) -> Response:
    """POST /user/transfer: give credit to another user (the same service as the REST API)."""
    form, active = await _logged_in_form(request)
    if active is None:
        return _see_other()
    try:
        await actions.transfer(
            installation_of(request),
            sender=active.user_name,  # always the logged-in person, never a form field
            recipient=form.get("recipient", ""),
            amount=form.get("amount", "").strip(),
            comment=form.get("comment", ""),
        )
    except (errors.InvalidInput, errors.NotAllowed, errors.NotFound, errors.Conflict) as refusal:
        return await _home_page(
            request,
            active,
            status_code=status_for(refusal),
            problem=refusal.message,
            form={k: form.get(k, "")[:200] for k in ("recipient", "amount", "comment")},
        )
    return _see_other("/user?done=transfer")


@user_view()
async def release(request: Request) -> Response:
    """POST /user/release: print a held document (the same service as the REST release)."""
    form, active = await _logged_in_form(request)
    if active is None:
        return _see_other()
    try:
        accepted = await release_from_form(
            installation_of(request),
            user_id=active.user_id,
            form=form,
            client_host=client_of(request).host,
        )
    except (
        errors.InvalidInput,
        errors.NotAllowed,
        errors.NotFound,
        errors.Conflict,
        errors.ServiceUnavailable,
    ) as refusal:
        return await _home_page(
            request, active, status_code=status_for(refusal), release_problem=refusal.message
        )
    if accepted.status == "failed":
        # Charged and refunded in the service; the page says why, and nothing is owed.
        problem = (
            f"The printer could not take the document: {accepted.message}. Nothing was charged."
        )
        return await _home_page(request, active, status_code=502, release_problem=problem)
    if accepted.status == "waiting":
        # A print rule holds it: nothing is charged until an administrator approves it.
        notice = f"{WAITING_FOR_APPROVAL}: {accepted.message}"
        return await _home_page(request, active, release_notice=notice)
    return _see_other("/user?done=release")


async def token_login(request: Request) -> Response:
    """POST /user with auth_user and auth_token, as an LMS page submits them.

    No CSRF token here: the form comes from another site by design, and the one-time
    token, which only the LMS can obtain, is what proves the request.
    """
    form = await read_form(request)
    auth_user = form.get("auth_user", "")
    auth_token = form.get("auth_token", "")
    installation = installation_of(request)
    try:
        # Database work only (no password hash to wait for): the database's own threads.
        result = await installation.db.run(
            lambda: logins.log_in_with_token(
                installation,
                auth_user=auth_user,
                auth_token=auth_token,
                address=client_of(request).host,
                replaces=request.cookies.get(SESSION_COOKIE),
            )
        )
    except (logins.LoginFailed, LoginThrottled) as refusal:
        return _refused(request, refusal)
    return _logged_in(request, result)


@user_view()
async def password_login(request: Request) -> Response:
    """POST /user/login: the login form (user name, password, CSRF token)."""
    form = await read_form(request)
    user_name = form.get("username", "")
    if not sessions.csrf_matches(request.cookies.get(CSRF_COOKIE), form.get("csrf_token")):
        return _login_page(request, message=CSRF_REFUSED, status_code=403, user_name=user_name)
    try:
        result = await in_thread(
            lambda: logins.log_in_with_password(
                installation_of(request),
                user_name=user_name,
                password=form.get("password", ""),
                address=client_of(request).host,
                replaces=request.cookies.get(SESSION_COOKIE),
            )
        )
    except (logins.LoginFailed, LoginThrottled) as refusal:
        return _refused(request, refusal, user_name=user_name[:100])
    return _logged_in(request, result)


def _find_active(request: Request) -> ActiveSession | None:
    with installation_of(request).db.read() as session:
        return sessions.find_session(session, request.cookies.get(SESSION_COOKIE))


@user_view(open_in_maintenance=True)
async def logout(request: Request) -> Response:
    """POST /user/logout: end the session on the server, then show the login form."""
    form = await read_form(request)
    active = await in_thread(_find_active, request)
    if active is not None:
        if not sessions.csrf_matches(active.csrf_token, form.get("csrf_token")):
            raise errors.NotAllowed(CSRF_REFUSED)
        await in_thread(
            logins.log_out, installation_of(request), request.cookies.get(SESSION_COOKIE)
        )
    response = _see_other()
    _clear_cookie(request, response, SESSION_COOKIE)
    return response

"""Log-in and log-out of the admin console (`printsrv.people.admin_logins` does the work)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from printsrv import errors
from printsrv.error_table import retry_after
from printsrv.http import client_of, installation_of
from printsrv.people import admin_logins, sessions
from printsrv.people.throttle import LoginThrottled
from printsrv.platform.threads import in_thread
from printsrv.web.admin.pages import (
    ADMIN_CSRF_COOKIE,
    ADMIN_SESSION_COOKIE,
    CSRF_REFUSED,
    admin_gates,
    clear_cookie,
    current_admin,
    error_page,
    render,
    require_csrf,
    see_other,
    set_cookie,
)
from printsrv.web.views import read_form, status_for


def _login_form(
    request: Request, *, message: str | None = None, user_name: str = "", status_code: int = 200
) -> Response:
    csrf = request.cookies.get(ADMIN_CSRF_COOKIE)
    if not sessions.is_well_formed(csrf):
        csrf = sessions.new_secret()
    assert csrf is not None
    response = render(
        request,
        "admin/login.html",
        {"message": message, "login_csrf": csrf, "user_name": user_name},
        status_code=status_code,
    )
    set_cookie(request, response, ADMIN_CSRF_COOKIE, csrf)
    return response


async def login(request: Request) -> Response:
    """GET /admin/login: the log-in form (the dashboard when logged in already);
    POST: log in with user name, password and the form's CSRF token."""
    try:
        admin_gates(request)
        if request.method == "GET":
            if await current_admin(request) is not None:
                return see_other("/admin")
            return _login_form(request)
        form = await read_form(request)
        user_name = form.get("username", "")
        if not sessions.csrf_matches(
            request.cookies.get(ADMIN_CSRF_COOKIE), form.get("csrf_token")
        ):
            return _login_form(request, message=CSRF_REFUSED, user_name=user_name, status_code=403)
        installation = installation_of(request)
        try:
            result = await in_thread(
                lambda: admin_logins.log_in_admin(
                    installation,
                    user_name=user_name,
                    password=form.get("password", ""),
                    address=client_of(request).host,
                    replaces=request.cookies.get(ADMIN_SESSION_COOKIE),
                )
            )
        except (admin_logins.AdminLoginFailed, LoginThrottled) as refusal:
            response = _login_form(
                request,
                message=refusal.message,
                user_name=user_name[:100],
                status_code=status_for(refusal),
            )
            seconds = retry_after(refusal)
            if seconds is not None:
                response.headers["Retry-After"] = str(seconds)
            return response
    except errors.PrintsrvError as error:
        return error_page(request, error)
    response = see_other("/admin")
    set_cookie(request, response, ADMIN_SESSION_COOKIE, result.session_id)
    return response


async def logout(request: Request) -> Response:
    """POST /admin/logout: end the session on the server, then show the log-in form."""
    try:
        admin_gates(request)
        admin = await current_admin(request)
        if admin is not None:
            await require_csrf(request, admin)
            await in_thread(
                admin_logins.log_out_admin,
                installation_of(request),
                request.cookies.get(ADMIN_SESSION_COOKIE),
            )
    except errors.PrintsrvError as error:
        return error_page(request, error)
    response = see_other("/admin/login")
    clear_cookie(request, response, ADMIN_SESSION_COOKIE)
    return response

"""The admin console's page machinery: gates, sessions, CSRF, the layout. Pages use two names:

- `admin_page(template, section=...)`: a handler behind every gate with an admin session;
  it gets an `AdminRequest` and returns the template's context (a dict), or a Response.
- `require_csrf(request, admin)`: the posted form, once its CSRF token is checked. An
  `admin_page` runs it itself before a POST reaches the handler (`AdminRequest.form`).

The gates, in the REST admin API's order: the client address must be in
`api.restful.ip-addresses-allowed` (void: all), then TLS off loopback (403 either way);
maintenance does not apply (the admin works during it). Without a live session a GET goes
to the log-in form and a POST is refused. Service errors become the console's error page
through the one error table. Responses carry the user web app's security headers (no
script, nothing from another site, no caching); cookies are HttpOnly, SameSite=Strict,
limited to /admin, and Secure over https.

docs/admin-console.md ("Adding a page") shows a whole page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from printsrv import errors
from printsrv.error_table import answer_for, retry_after
from printsrv.http import client_of, installation_of
from printsrv.operations.installation import Installation
from printsrv.people import admin_logins, sessions
from printsrv.people.admin_logins import ActiveAdmin
from printsrv.platform.security import require_tls
from printsrv.platform.threads import in_thread
from printsrv.web.views import SECURITY_HEADERS, read_form, status_for

__all__ = [
    "ADMIN_CSRF_COOKIE",
    "ADMIN_SESSION_COOKIE",
    "CSRF_REFUSED",
    "NAV",
    "AdminRequest",
    "admin_gates",
    "admin_page",
    "error_page",
    "render",
    "require_csrf",
    "see_other",
]

COOKIE_PATH = "/admin"
ADMIN_SESSION_COOKIE = "printsrv_admin_session"
# Before log-in there is no session: the log-in form's CSRF token is double-submitted, once
# in this cookie and once in the form.
ADMIN_CSRF_COOKIE = "printsrv_admin_csrf"
FORM_LIMIT = 64 * 1024
MAX_FORM_FIELDS = 200  # the settings page posts one property; report forms a few dozen
CSRF_REFUSED = "This form has expired. Please reload the page and try again."

# The navigation: (section, label, path). A page names its section to be marked current.
NAV: tuple[tuple[str, str, str], ...] = (
    ("dashboard", "Dashboard", "/admin"),
    ("people", "People", "/admin/people"),
    ("printing", "Printing", "/admin/printing"),
    ("reports", "Reports", "/admin/reports"),
    ("settings", "Settings", "/admin/settings"),
)


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _thousands(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("printsrv.web", "templates"),
    autoescape=jinja2.select_autoescape(["html", "svg"]),
    undefined=jinja2.StrictUndefined,  # a typo in a template fails a test, not silently
)
_env.filters["money"] = _money
_env.filters["thousands"] = _thousands
_env.filters["when"] = lambda value: value.strftime("%Y-%m-%d %H:%M UTC") if value else ""
templates = Jinja2Templates(env=_env)


def _secure(request: Request) -> bool:
    return client_of(request).scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    """An admin cookie: HttpOnly, SameSite=Strict (no link from elsewhere carries it), /admin."""
    response.set_cookie(
        name, value, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request)
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    """Drop an admin cookie."""
    response.delete_cookie(
        name, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request)
    )


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    admin: ActiveAdmin | None = None,
    section: str = "",
    status_code: int = 200,
) -> Response:
    """A console page: `template` (extending admin/base.html) with the layout's context.

    The layout shows the navigation and the log-out form only with an `admin`.
    """
    full = {
        "admin": admin,
        "nav": NAV if admin is not None else (),
        "section": section,
        "csrf_token": admin.csrf_token if admin is not None else "",
        **context,
    }
    return templates.TemplateResponse(
        request, template, full, status_code=status_code, headers=SECURITY_HEADERS
    )


def see_other(path: str = "/admin") -> Response:
    """303 to `path` (after a POST the browser GETs it, so a reload does not post again)."""
    return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)


def error_page(
    request: Request, error: errors.PrintsrvError, admin: ActiveAdmin | None = None
) -> Response:
    """A service error as a console page, its status from the one error table."""
    response = render(
        request,
        "admin/error.html",
        {"heading": answer_for(error).heading, "message": error.message},
        admin=admin,
        status_code=status_for(error),
    )
    seconds = retry_after(error)
    if seconds is not None:
        response.headers["Retry-After"] = str(seconds)
    return response


def admin_gates(request: Request) -> None:
    """Raise NotAllowed (403) for an address outside the allowlist, TlsRequired (403) for
    plain HTTP off loopback; run before anything of the request is read."""
    client = client_of(request)
    snapshot = installation_of(request).config.snapshot()
    admin_logins.require_admin_address(snapshot, client.host)
    require_tls(client, "The admin console")


def _find_admin(request: Request) -> ActiveAdmin | None:
    installation = installation_of(request)
    with installation.db.read() as session:
        return admin_logins.find_admin_session(
            session, request.cookies.get(ADMIN_SESSION_COOKIE), installation.config.snapshot()
        )


async def current_admin(request: Request) -> ActiveAdmin | None:
    """The admin whose session cookie the request carries (renewed when due), or None."""
    admin = await in_thread(_find_admin, request)
    if admin is not None:
        await in_thread(
            admin_logins.renew_admin_session,
            installation_of(request),
            request.cookies.get(ADMIN_SESSION_COOKIE, ""),
            admin,
        )
    return admin


async def require_csrf(request: Request, admin: ActiveAdmin) -> dict[str, str]:
    """The posted form (text fields), once its `csrf_token` is the session's; else NotAllowed.

    Every form of the console carries `<input type="hidden" name="csrf_token"
    value="{{ csrf_token }}">`; base.html's context provides the value.
    """
    form = await read_form(request, limit=FORM_LIMIT, max_fields=MAX_FORM_FIELDS)
    if not sessions.csrf_matches(admin.csrf_token, form.get("csrf_token")):
        raise errors.NotAllowed(CSRF_REFUSED)
    return form


@dataclass
class AdminRequest:
    """What an `admin_page` handler gets.

    request:  the Starlette request (query parameters, path parameters).
    admin:    who is logged in (`admin.actor` is what audit trails record).
    form:     a POST's form fields, CSRF checked already; empty for a GET.
    template, section: the page's, as `admin_page` was given them.
    """

    request: Request
    admin: ActiveAdmin
    template: str
    section: str
    form: dict[str, str] = field(default_factory=dict)

    @property
    def installation(self) -> Installation:
        """The installation (database, config, CUPS) the request is served for."""
        return installation_of(self.request)

    def render(
        self, context: dict[str, Any], *, template: str | None = None, status_code: int = 200
    ) -> Response:
        """The page (or another template) with this context and status, in the layout."""
        return render(
            self.request,
            template or self.template,
            context,
            admin=self.admin,
            section=self.section,
            status_code=status_code,
        )


PageResult = dict[str, Any] | Response
PageHandler = Callable[[AdminRequest], Awaitable[PageResult]]
Endpoint = Callable[[Request], Awaitable[Response]]


def admin_page(template: str, *, section: str) -> Callable[[PageHandler], Endpoint]:
    """Make `handler(page: AdminRequest)` a console endpoint behind every gate.

    Gates, session, then (for any method but GET and HEAD) the CSRF check; a service error
    raised by the handler becomes the console's error page. The handler returns the
    template's context (rendered in the layout with status 200) or a Response of its own
    (`page.render(..., status_code=422)`, `see_other(...)`, a download).
    """

    def decorate(handler: PageHandler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            admin: ActiveAdmin | None = None
            try:
                admin_gates(request)
                admin = await current_admin(request)
                if admin is None:
                    if request.method in ("GET", "HEAD"):
                        return see_other("/admin/login")
                    raise errors.NotAuthenticated("Please log in to the admin console first.")
                page = AdminRequest(request, admin, template, section)
                if request.method not in ("GET", "HEAD"):
                    page.form = await require_csrf(request, admin)
                result = await handler(page)
            except errors.PrintsrvError as error:
                return error_page(request, error, admin)
            if isinstance(result, Response):
                return result
            return page.render(result)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return decorate

"""The admin console at /admin: log-in, dashboard, people and money, printing, reports,
settings (docs/admin-console.md).

pages.py     the machinery every page uses: `admin_page`, `require_csrf`, the layout, gates
auth.py      log-in and log-out (printsrv.people.admin_logins)
sections.py  the dashboard and settings; people.py, printing.py, reports.py the others

To add a page: write a handler with `@admin_page(...)` in a module here, a template that
extends admin/base.html, and one Route in `admin_routes()` below (docs/admin-console.md,
"Adding a page").
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from printsrv.web.admin import auth, people, printing, reports, sections

__all__ = ["admin_routes"]


def admin_routes() -> list[BaseRoute]:
    """The console's routes, at their full paths (app.py mounts them with the others).

    `/admin` itself is a route of its own: a Mount would answer it with a redirect to
    `/admin/`.
    """
    return [
        Route("/admin", sections.dashboard, methods=["GET"]),
        Route("/admin/login", auth.login, methods=["GET", "POST"]),
        Route("/admin/logout", auth.logout, methods=["POST"]),
        Route("/admin/people", people.search, methods=["GET"]),
        Route("/admin/printing", printing.printing_page, methods=["GET"]),
        Route("/admin/reports", reports.report_form, methods=["GET", "POST"]),
        Route("/admin/settings", sections.settings, methods=["GET", "POST"]),
        # People & money (people.py)
        Route("/admin/people/users/{name}", people.user_page, methods=["GET"]),
        Route("/admin/people/users/{name}/adjust", people.adjust_user, methods=["POST"]),
        Route("/admin/people/users/{name}/enabled", people.set_enabled, methods=["POST"]),
        Route("/admin/people/users/{name}/uuid", people.regenerate_uuid, methods=["POST"]),
        Route("/admin/people/groups", people.groups_page, methods=["GET"]),
        Route("/admin/people/groups/{name}", people.group_page, methods=["GET", "POST"]),
        Route("/admin/people/groups/{name}/members", people.change_membership, methods=["POST"]),
        Route("/admin/people/shared", people.shared_page, methods=["GET", "POST"]),
        Route("/admin/people/shared/adjust", people.adjust_shared, methods=["POST"]),
        # Printing (printing.py)
        Route("/admin/printing/queues", printing.set_queue, methods=["POST"]),
        Route("/admin/printing/queues/route", printing.route_queue, methods=["POST"]),
        Route("/admin/printing/access", printing.set_access, methods=["POST"]),
        Route("/admin/printing/prices", printing.set_prices, methods=["POST"]),
        Route("/admin/printing/documents", printing.document_log, methods=["GET"]),
        Route("/admin/printing/waiting", printing.waiting_page, methods=["GET"]),
        Route("/admin/printing/waiting/{decision}", printing.decide_waiting, methods=["POST"]),
        Route("/admin/printing/documents/{id}/pdf", printing.document_pdf, methods=["GET"]),
        Route(
            "/admin/printing/documents/{id}/preview.png",
            printing.document_preview,
            methods=["GET"],
        ),
        # Reports (reports.py)
        Route("/admin/reports/jobs/{key}", reports.job_page, methods=["GET"]),
        Route("/admin/reports/jobs/{key}/status", reports.job_status, methods=["GET"]),
        Route("/admin/reports/jobs/{key}/files/{name}", reports.job_file, methods=["GET"]),
        Mount("/admin/static", app=StaticFiles(packages=[("printsrv.web", "static")])),
    ]

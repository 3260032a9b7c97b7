"""The user web app at /user: login by one-time token or password, the user's page, logout.

views.py     handlers (thin): form -> CSRF check -> one service call -> page
logins.py    the login and logout units of work
sessions.py  database-backed sessions and CSRF tokens
throttle.py  login rate limits per user name and per address, in the database
account.py   the balance and transactions the user's page shows (from `financial`)
release.py   releasing a held document: printer choices, the form -> printing.intake.release
station.py   the release station page at /release/{printer} (printsrv.release.stations)
admin/       the admin console at /admin (its own routes: `printsrv.web.admin.admin_routes`)
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from printsrv.web import station, views

__all__ = ["web_routes"]


def web_routes() -> list[BaseRoute]:
    """The web app's routes, at their full paths.

    `/user` itself is a route of its own rather than a Mount's root: a Mount answers the
    bare path with a redirect to `/user/`, and an LMS posts to `/user`.
    """
    return [
        Route("/user", views.home, methods=["GET", "POST"]),
        Route("/user/login", views.password_login, methods=["POST"]),
        Route("/user/logout", views.logout, methods=["POST"]),
        Route("/user/transfer", views.transfer, methods=["POST"]),
        Route("/user/release", views.release, methods=["POST"]),
        Mount("/user/static", app=StaticFiles(packages=[("printsrv.web", "static")])),
        Route("/release/{printer}", station.station, methods=["GET"]),
        Route("/release/{printer}/identify", station.identify, methods=["POST"]),
        Route("/release/{printer}/print", station.print_documents, methods=["POST"]),
        Route("/release/{printer}/leave", station.leave, methods=["POST"]),
        Route("/release/{printer}/more", station.more_time, methods=["POST"]),
    ]

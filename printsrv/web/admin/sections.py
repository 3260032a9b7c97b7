"""The console's sections until they are built: each one a page of the layout, so the
navigation works from the first commit and the sections' tests have a page to start from."""

from __future__ import annotations

from typing import Any

from printsrv.web.admin.pages import AdminRequest, admin_page


@admin_page("admin/dashboard.html", section="dashboard")
async def dashboard(page: AdminRequest) -> dict[str, Any]:
    """GET /admin: the dashboard."""
    return {}


def _coming(title: str, text: str) -> dict[str, Any]:
    return {"title": title, "text": text}


@admin_page("admin/coming.html", section="people")
async def people(page: AdminRequest) -> dict[str, Any]:
    """GET /admin/people: users, groups, shared accounts (to come)."""
    return _coming("People & money", "Users, groups and shared accounts will be here.")


@admin_page("admin/coming.html", section="printing")
async def printing(page: AdminRequest) -> dict[str, Any]:
    """GET /admin/printing: printers, queues and the document log (to come)."""
    return _coming("Printing", "Printers, queues and the document log will be here.")


@admin_page("admin/coming.html", section="reports")
async def reports(page: AdminRequest) -> dict[str, Any]:
    """GET /admin/reports: the transaction report (to come)."""
    return _coming("Reports", "The transaction report will be here.")


@admin_page("admin/coming.html", section="settings")
async def settings(page: AdminRequest) -> dict[str, Any]:
    """GET /admin/settings: the config properties (to come)."""
    return _coming("Settings", "The config properties will be here.")

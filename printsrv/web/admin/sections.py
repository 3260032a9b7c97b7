"""The console's dashboard and settings (People, Printing and Reports have modules of
their own: people.py, printing.py, reports.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from printsrv import errors
from printsrv.operations.dashboard import load_dashboard
from printsrv.operations.settings import SettingView, change_setting, list_settings
from printsrv.platform.threads import in_thread
from printsrv.web.admin.charts import bar_chart, hbar_chart, level_meter
from printsrv.web.admin.pages import AdminRequest, admin_page, see_other
from printsrv.web.views import status_for


def _pages(value: object) -> str:
    return f"{int(value):,}"  # type: ignore[call-overload]


def _amount(value: object) -> str:
    return f"{value:,.2f}"


@admin_page("admin/dashboard.html", section="dashboard")
async def dashboard(page: AdminRequest) -> dict[str, Any]:
    """GET /admin: the dashboard (printsrv.operations.dashboard gathers the figures)."""
    board = await load_dashboard(page.installation)
    labels = [day.day.strftime("%d %b") for day in board.days]
    return {
        "board": board,
        "currency": page.installation.config.snapshot()["financial.currency-code"],
        "pages_chart": bar_chart(
            "chart-pages",
            "Pages printed per day, last 30 days",
            labels,
            [day.pages for day in board.days],
            fmt=_pages,
        ),
        "spent_chart": bar_chart(
            "chart-spent",
            "Money spent on printing per day, last 30 days",
            labels,
            [day.spent for day in board.days],
            fmt=_amount,
            color="#8a4d00",
        ),
        "groups_chart": hbar_chart(
            "chart-groups", "Top groups by pages, last 30 days", board.top_groups, fmt=_pages
        ),
        "printers_chart": hbar_chart(
            "chart-printers",
            "Top printers by pages, last 30 days",
            board.top_printers,
            fmt=_pages,
            color="#2e6b3a",
        ),
        "meter": level_meter,
    }


def _anchor(name: str) -> str:
    return "setting-" + name.replace(".", "-")


def _settings_context(
    page: AdminRequest,
    listed: list[SettingView],
    *,
    problems: dict[str, str] | None = None,
    entered: dict[str, str] | None = None,
    notice: str | None = None,
) -> dict[str, Any]:
    query = page.request.query_params.get("q", "").strip()[:100]
    shown = [s for s in listed if query.lower() in (s.name + " " + s.help).lower()]
    return {
        "settings": shown,
        "total": len(listed),
        "query": query,
        "problems": problems or {},
        "entered": entered or {},
        "notice": notice,
        "anchor": _anchor,
    }


@admin_page("admin/settings.html", section="settings")
async def settings(page: AdminRequest) -> dict[str, Any] | Response:
    """GET /admin/settings: the config properties, filtered by `q`; POST: change one
    (name, value, and confirm for a secret) through printsrv.platform.properties."""
    installation = page.installation

    def read() -> list[SettingView]:
        with installation.db.read() as session:
            return list_settings(session)

    if page.request.method == "POST":
        name = page.form.get("name", "")
        value = page.form.get("value", "")
        try:
            await in_thread(
                change_setting,
                installation,
                name=name,
                value=value,
                confirm=page.form.get("confirm"),
                actor=page.admin.actor,
            )
        except errors.ConfigError as refusal:
            listed = await in_thread(read)
            masked = any(s.name == name and s.masked for s in listed)
            context = _settings_context(
                page,
                listed,
                problems={name: refusal.message},
                entered={} if masked else {name: value[:1024]},
            )
            return page.render(context, status_code=status_for(refusal))
        # The refresher would apply it within a second; this server applies it at once.
        await in_thread(installation.config.refresh)
        return see_other(f"/admin/settings?changed={quote(name)}#{_anchor(name)}")
    changed = page.request.query_params.get("changed")
    notice = f"Saved {changed}." if changed else None
    return _settings_context(page, await in_thread(read), notice=notice)

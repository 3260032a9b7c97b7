"""The console's Reports section (docs/admin-console.md, "Reports"): the transaction report
with all its parameters, as CSV or PDF, run as a `report.accounttrx` job (docs/jobs.md) on
whichever server claims it, with a progress bar until its file is ready.

Each handler parses, calls one service (`printsrv.jobs.actions`: start, poll, open a result),
and renders. The job's page reloads itself every two seconds while the job runs (a
`<noscript>` refresh); with script, /admin/static/admin-jobs.js polls the job's JSON and moves
the bar instead, and the page allows that one script of its own origin.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from starlette.responses import JSONResponse, Response, StreamingResponse

from printsrv import errors
from printsrv.jobs import actions
from printsrv.jobs.service import JobView, Owner
from printsrv.web.admin.pages import AdminRequest, admin_page, see_other
from printsrv.web.views import SECURITY_HEADERS, status_for

__all__ = ["job_file", "job_page", "job_status", "report_form"]

JOB_TYPE = "report.accounttrx"
ACCOUNT_TYPES = ("USER", "GROUP", "SHARED")
TRX_TYPES = (
    "ADJUST", "DEPOSIT", "GATEWAY", "INITIAL", "PDF_OUT", "PRINT_IN", "PRINT_OUT",
    "PURCHASE", "QUOTA", "TRANSFER", "VOUCHER",
)  # fmt: skip
SORT_FIELDS = ("TRX_DATE", "TRX_TYPE")
FIELDS = ("account_type", "account_name", "text", "trx_type", "date_from", "date_to",
          "zone", "sort_field", "ascending", "media_type")  # fmt: skip
DEFAULTS = {"account_type": "USER", "zone": "+00", "sort_field": "TRX_DATE",
            "ascending": "Y", "media_type": "CSV"}  # fmt: skip
_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
# The page may run its own script (the progress poller) and fetch the job's JSON.
JOB_PAGE_POLICY = (
    SECURITY_HEADERS["Content-Security-Policy"] + "; script-src 'self'; connect-src 'self'"
)


def _owner(page: AdminRequest) -> Owner:
    return Owner.admin(page.admin.actor)


def _day(form: dict[str, str], field: str) -> dict[str, Any] | None:
    text = form.get(field, "").strip()
    if not text:
        return None
    found = _DAY.fullmatch(text)
    if found is None:
        raise errors.InvalidInput(f"{text[:20]!r} is not a day (YYYY-MM-DD).", reason=field)
    ccyy, mm, dd = (int(part) for part in found.groups())
    return {"ccyy": ccyy, "mm": mm, "dd": dd, "zzz": form.get("zone", "+00").strip() or "+00"}


def report_argument(form: dict[str, str]) -> dict[str, Any]:
    """The job's argument (REST's report body) from the form; InvalidInput naming a field."""

    def text(field: str) -> str | None:
        return form.get(field, "").strip() or None

    return {
        "select": {
            "account_type": form.get("account_type", "USER"),
            "account_name": text("account_name"),
            "text": text("text"),
            "trx_type": text("trx_type"),
            "date_from": _day(form, "date_from"),
            "date_to": _day(form, "date_to"),
        },
        "sort": {
            "field": form.get("sort_field", "TRX_DATE"),
            "ascending": form.get("ascending") != "N",
        },
        "media_type": form.get("media_type", "CSV"),
    }


def _field_of(error: errors.PrintsrvError) -> str:
    # The report's own checks name "argument.select.date_from", "argument.media_type" ...
    reason = (error.reason or "").rsplit(".", 1)[-1]
    renamed = {"zzz": "zone", "field": "sort_field"}.get(reason, reason)
    return renamed if renamed in FIELDS else ""


def _form_context(entered: dict[str, str], problems: dict[str, str]) -> dict[str, Any]:
    return {
        "entered": {**DEFAULTS, **{k: v[:200] for k, v in entered.items() if k in FIELDS}},
        "problems": problems,
        "account_types": ACCOUNT_TYPES,
        "trx_types": TRX_TYPES,
        "sort_fields": SORT_FIELDS,
    }


@admin_page("admin/reports.html", section="reports")
async def report_form(page: AdminRequest) -> dict[str, Any] | Response:
    """GET /admin/reports: the transaction report's form; POST: start it as a job and go
    to the job's page."""
    if page.request.method != "POST":
        return _form_context({}, {})
    try:
        view = await actions.start_job(
            page.installation,
            type_name=JOB_TYPE,
            argument=report_argument(page.form),
            owner=_owner(page),
        )
    except (errors.InvalidInput, errors.NotFound) as refusal:
        problems = {
            _field_of(refusal)
            or ("account_name" if isinstance(refusal, errors.NotFound) else ""): refusal.message
        }
        return page.render(_form_context(page.form, problems), status_code=status_for(refusal))
    return see_other(f"/admin/reports/jobs/{quote(view.key, safe='')}")


def _job_json(view: JobView) -> dict[str, Any]:
    return {"state": view.state, "progress": view.progress, "end": view.end}


@admin_page("admin/report_job.html", section="reports")
async def job_page(page: AdminRequest) -> Response:
    """GET /admin/reports/jobs/{key}: the report's progress, then its file."""
    view = await actions.poll_job(page.installation, page.request.path_params["key"], _owner(page))
    response = page.render({"job": view})
    response.headers["Content-Security-Policy"] = JOB_PAGE_POLICY
    return response


@admin_page("admin/report_job.html", section="reports")
async def job_status(page: AdminRequest) -> Response:
    """GET /admin/reports/jobs/{key}/status: {"state", "progress", "end"} for the poller."""
    view = await actions.poll_job(page.installation, page.request.path_params["key"], _owner(page))
    return JSONResponse(_job_json(view), headers=SECURITY_HEADERS)


@admin_page("admin/report_job.html", section="reports")
async def job_file(page: AdminRequest) -> Response:
    """GET /admin/reports/jobs/{key}/files/{name}: the report's file, streamed."""
    found, chunks = await actions.open_result(
        page.installation,
        page.request.path_params["key"],
        page.request.path_params["name"],
        _owner(page),
    )
    return StreamingResponse(
        chunks,
        media_type=found.media_type,
        headers={
            **SECURITY_HEADERS,
            "Content-Length": str(found.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(found.name)}",
        },
    )

"""The console's Printing section (docs/admin-console.md, "Printing"): printers and
queues, the document log, a document's PDF and a picture of its first page, and the prints
waiting for approval (approved or denied here through `printsrv.printing.approval`, as the
CLI and REST do).

Each handler parses, calls one service (`printsrv.operations.printing_admin`,
`printsrv.printing.approval`), and renders.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

from starlette.responses import FileResponse, Response

from printsrv import errors
from printsrv.accounts import service as accounting
from printsrv.operations import printing_admin
from printsrv.platform.threads import in_thread
from printsrv.printing import approval
from printsrv.web.admin.pages import AdminRequest, admin_page, see_other
from printsrv.web.admin.people import page_number
from printsrv.web.views import SECURITY_HEADERS, status_for

__all__ = [
    "decide_waiting",
    "document_log",
    "document_pdf",
    "document_preview",
    "printing_page",
    "route_queue",
    "set_access",
    "set_prices",
    "set_queue",
    "waiting_page",
]

PRICE_FIELDS = ("per_side", "per_side_color", "per_side_duplex", "per_side_duplex_color")
PRICE_NEEDED = "A price per side is needed (or press Make free)."


async def _printing_context(
    page: AdminRequest,
    *,
    notice: str | None = None,
    problems: dict[str, str] | None = None,
    entered: dict[str, str] | None = None,
) -> dict[str, Any]:
    installation = page.installation
    return {
        "printers": await in_thread(printing_admin.list_printer_views, installation),
        "queues": await in_thread(printing_admin.list_queue_views, installation),
        "notice": notice,
        "problems": problems or {},
        "entered": entered or {},
    }


@admin_page("admin/printing.html", section="printing")
async def printing_page(page: AdminRequest) -> dict[str, Any]:
    """GET /admin/printing: the printers (state, prices, access lists) and the queues."""
    params = page.request.query_params
    changed, done = params.get("changed"), params.get("done")
    notice = f"Queue {changed} changed." if changed else done[:200] if done else None
    return await _printing_context(page, notice=notice)


@admin_page("admin/printing.html", section="printing")
async def set_access(page: AdminRequest) -> dict[str, Any] | Response:
    """POST /admin/printing/access: `group` on `printer`'s ALLOW or DENY list, or off
    them (`scope` REMOVE)."""
    printer = page.form.get("printer", "")
    group = page.form.get("group", "")
    try:
        done = await in_thread(
            printing_admin.change_access,
            page.installation,
            printer,
            group,
            page.form.get("scope", ""),
        )
    except (errors.InvalidInput, errors.NotFound) as refusal:
        context = await _printing_context(
            page, problems={printer: refusal.message}, entered={printer: group[:100]}
        )
        return page.render(context, status_code=status_for(refusal))
    return see_other(f"/admin/printing?done={quote(f'{printer}: {done}.')}#printers-heading")


def parse_prices(form: dict[str, str]) -> dict[str, Decimal | None]:
    """The price form's amounts ("0.10"; an empty variant: None, it falls back as
    `printsrv printer cost` says); InvalidInput naming the field for a bad or negative one."""
    prices: dict[str, Decimal | None] = {}
    for field in PRICE_FIELDS:
        text = form.get(field, "").strip()
        amount = accounting.parse_amount(text, param=field) if text else None
        if amount is not None and amount < 0:
            raise errors.InvalidInput(f"A price cannot be negative: {text}.", reason=field)
        prices[field] = amount
    if prices["per_side"] is None:
        raise errors.InvalidInput(PRICE_NEEDED, reason="per_side")
    return prices


@admin_page("admin/printing.html", section="printing")
async def set_prices(page: AdminRequest) -> dict[str, Any] | Response:
    """POST /admin/printing/prices: `printer`'s simple prices (`per_side`, and optionally
    `per_side_color`, `per_side_duplex`, `per_side_duplex_color`), or with `clear` Y none
    (free), through `printing.printers.set_cost` as `printsrv printer cost` does."""
    printer = page.form.get("printer", "")
    try:
        if page.form.get("clear") == "Y":
            prices: dict[str, Decimal | None] = {"per_side": None}
        else:
            prices = parse_prices(page.form)
        described = await in_thread(
            printing_admin.set_prices,
            page.installation,
            printer,
            prices.pop("per_side"),
            actor=page.admin.actor,
            **prices,
        )
    except errors.InvalidInput as refusal:
        field = refusal.reason if refusal.reason in PRICE_FIELDS else "per_side"
        context = await _printing_context(
            page,
            problems={f"prices:{printer}:{field}": refusal.message},
            entered={f"prices:{printer}:{f}": page.form.get(f, "")[:40] for f in PRICE_FIELDS},
        )
        # A form the admin can correct: 422, as docs/admin-console.md's "Adding a page".
        return page.render(context, status_code=422)
    words = "; ".join(described)
    return see_other(f"/admin/printing?done={quote(f'{printer}: {words}.')}#printers-heading")


@admin_page("admin/printing.html", section="printing")
async def route_queue(page: AdminRequest) -> dict[str, Any] | Response:
    """POST /admin/printing/queues/route: send `queue`'s documents to `printer` (empty:
    hold them in the user's inbox), as `printsrv queue set --printer | --no-printer`."""
    queue = page.form.get("queue", "")
    printer = page.form.get("printer", "").strip()
    try:
        name = await in_thread(
            printing_admin.route_queue,
            page.installation,
            queue,
            printer or None,
            actor=page.admin.actor,
        )
    except (errors.InvalidInput, errors.NotFound, errors.Conflict) as refusal:
        context = await _printing_context(
            page,
            problems={f"route:{queue}": refusal.message},
            entered={f"route:{queue}": printer[:100]},
        )
        return page.render(context, status_code=status_for(refusal))
    return see_other(f"/admin/printing?changed={quote(name)}#queues-heading")


@admin_page("admin/printing.html", section="printing")
async def set_queue(page: AdminRequest) -> Response:
    """POST /admin/printing/queues: enable (`enabled` Y) or disable (N) the queue `queue`."""
    value = page.form.get("enabled", "")
    if value not in ("Y", "N"):
        raise errors.InvalidInput(f"enabled must be Y or N, not {value[:20]!r}.")
    name = await in_thread(
        printing_admin.set_queue_enabled,
        page.installation,
        page.form.get("queue", ""),
        value == "Y",
    )
    return see_other(f"/admin/printing?changed={name}#queues-heading")


@admin_page("admin/documents.html", section="printing")
async def document_log(page: AdminRequest) -> dict[str, Any] | Response:
    """GET /admin/printing/documents: the log, filtered by `type`, `user`, `from`, `to`
    (UTC days), a page at a time."""
    params = page.request.query_params
    query = printing_admin.LogQuery(
        doc_type=params.get("type", "all")[:20],
        user=params.get("user", "")[:100],
        date_from=params.get("from", "")[:20],
        date_to=params.get("to", "")[:20],
        page=page_number(page),
    )
    try:
        log = await in_thread(printing_admin.document_log, page.installation, query)
    except errors.InvalidInput as refusal:
        context = {
            "log": printing_admin.DocumentLog(query, [], False),
            "types": printing_admin.DOC_TYPES,
            "problems": {refusal.reason or "": refusal.message},
        }
        return page.render(context, status_code=status_for(refusal))
    return {"log": log, "types": printing_admin.DOC_TYPES, "problems": {}}


def _document_id(page: AdminRequest) -> int:
    text = page.request.path_params["id"]
    if not text.isdigit() or len(text) > 18:
        raise errors.NotFound(f"Document {text[:20]!r} does not exist")
    return int(text)


@admin_page("admin/error.html", section="printing")
async def document_pdf(page: AdminRequest) -> Response:
    """GET /admin/printing/documents/{id}/pdf: the document's stored PDF."""
    path, name = await in_thread(printing_admin.stored_pdf, page.installation, _document_id(page))
    return FileResponse(path, media_type="application/pdf", filename=name, headers=SECURITY_HEADERS)


@admin_page("admin/error.html", section="printing")
async def document_preview(page: AdminRequest) -> Response:
    """GET /admin/printing/documents/{id}/preview.png: its first page as a picture."""
    png = await printing_admin.first_page_png(page.installation, _document_id(page))
    return Response(png, media_type="image/png", headers=SECURITY_HEADERS)


# The prints waiting for approval, one page of the list (as `printsrv document waiting`).
WAITING_SHOWN = 200
DECISIONS = {"approve": approval.approve_document, "deny": approval.deny_document}


async def _waiting_context(
    page: AdminRequest,
    *,
    notice: str | None = None,
    problems: dict[str, str] | None = None,
    entered: dict[str, str] | None = None,
) -> dict[str, Any]:
    db = page.installation.db

    def read() -> list[approval.WaitingPrint]:
        with db.read() as session:
            return approval.list_waiting(session, limit=WAITING_SHOWN)

    return {
        "waiting": await in_thread(read),
        "shown": WAITING_SHOWN,
        "notice": notice,
        "problems": problems or {},
        "entered": entered or {},
    }


@admin_page("admin/waiting.html", section="printing")
async def waiting_page(page: AdminRequest) -> dict[str, Any]:
    """GET /admin/printing/waiting: the prints a rule holds, the longest waiting first, each
    with an Approve and a Deny form."""
    done = page.request.query_params.get("done")
    return await _waiting_context(page, notice=done[:300] if done else None)


def _decided_text(decision: approval.Decision) -> str:
    if decision.state == "denied":
        return f"Document {decision.document_id} denied; nothing charged."
    if decision.job_state == "failed":
        return (
            f"Document {decision.document_id} approved, but the printer refused it: "
            f"{decision.message} (nothing charged)."
        )
    return (
        f"Document {decision.document_id} approved: printing on {decision.printer}, "
        f"charged {decision.cost:,.2f}."
    )


@admin_page("admin/waiting.html", section="printing")
async def decide_waiting(page: AdminRequest) -> dict[str, Any] | Response:
    """POST /admin/printing/waiting/{decision}: approve (charge and print) or deny the held
    print `ref`, with an optional `comment`; a refusal (not waiting any more, balance too
    low, comment too long) is shown beside the entry."""
    decide = DECISIONS.get(page.request.path_params["decision"])
    if decide is None:
        raise errors.NotFound("There is no such decision: approve or deny")
    ref = page.form.get("ref", "")
    comment = page.form.get("comment", "")
    try:
        decision = await in_thread(
            decide, page.installation, ref, admin=page.admin.actor, comment=comment
        )
    except (errors.InvalidInput, errors.NotFound, errors.Conflict, errors.NotAllowed) as refusal:
        context = await _waiting_context(
            page, problems={ref: refusal.message}, entered={ref: comment[:600]}
        )
        return page.render(context, status_code=status_for(refusal))
    return see_other(f"/admin/printing/waiting?done={quote(_decided_text(decision))}")

"""REST documents: print (user), release from the inbox (user), and the document log (admin,
and each user's own).

POST /documents/print                      user: upload a document to a queue
POST /documents/<id>/print                 user: print a held document (printer=...)
GET  /documents?sort=&type=&limit=&page=&created_gte=&created_lte=      admin: the log
GET  /documents/<id> | /documents/ext_id=<ext_id>                       admin: one entry
GET  /documents/<id>/pdf | /documents/ext_id=<ext_id>/pdf               admin: its PDF
GET  /user/documents?sort=&type=&limit=&page=&created_gte=&created_lte=  user: their own log
POST /documents/<id>/approve [comment=] | /documents/<id>/deny [comment=]  admin: a print a
                                                                         rule held

Both POSTs honour an `Idempotency-Key` header as the money POSTs do: the service
(`intake.accept_upload_once`, `intake.release_once`) keeps the first answer per user and key,
and a retry of the same request gets it back with `Idempotent-Replayed: true`.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, date, datetime, time
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from financial.money import to_wire
from printsrv import errors
from printsrv.accounts import idempotency
from printsrv.documents import log as documents
from printsrv.documents.models import Document
from printsrv.errors import InvalidInput, NotFound
from printsrv.http import client_of, installation_of
from printsrv.platform.threads import in_thread
from printsrv.platform.uploads import Upload, receive_upload
from printsrv.printing import approval, intake
from printsrv.printing.context import PrintContext
from printsrv.printing.history import JobSummary
from printsrv.printing.ruled import RuledView, latest_ruled
from printsrv.rest.guards import authenticate_caller, require_admin, require_user
from printsrv.rest.responses import failure, replied, status_for

_FILE_NAME_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")
MAX_RELEASE_FORM_BYTES: Final = 64 * 1024
IDEMPOTENCY_HEADER: Final = "idempotency-key"


# --- rendering ---------------------------------------------------------------------------------


def created_text(moment: datetime) -> str:
    """``2019-09-13T09:18:38+0200``: the server's local time with its offset, as SavaPage."""
    return moment.astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")


def job_json(job: JobSummary) -> dict[str, Any]:
    """A print's job: where, how far (``state`` as ``status``), how much, and why it failed."""
    return {
        "printer": job.printer,
        "state": job.status,
        "cups_job_id": job.cups_job_id,
        "pages": job.pages,
        "copies": job.copies,
        "sheets": job.sheets,
        "cost": to_wire(job.cost),
        "refund": to_wire(job.refund),
        "reason": job.reason,
        "finished": created_text(job.finished) if job.finished is not None else None,
    }


def ruled_json(ruled: RuledView) -> dict[str, Any]:
    """What a print rule decided about an upload's latest ruled print, and its outcome."""
    return {
        "state": ruled.state,
        "status": ruled.status,
        "rules": list(ruled.rules),
        "message": ruled.message,
        "printer": ruled.printer,
        "comment": ruled.comment,
        "decided": created_text(ruled.decided) if ruled.decided is not None else None,
    }


def log_entry_json(entry: documents.LogEntry, ruled: RuledView | None = None) -> dict[str, Any]:
    """One log entry: the contract's six fields, unchanged and first; then, for a print (or
    an upload that was printed: its latest print), ``status`` and ``job``; for an upload a
    print rule refused or held, ``approval`` (and ``status`` when nothing was printed)."""
    body: dict[str, Any] = {
        "id": entry.id,
        "ext_id": entry.ext_id,
        "type": entry.type,
        "title": entry.title,
        "created": created_text(entry.created_at),
        "store": entry.store,
        # Colour detection's page counts (null: not known); printing.intake prices by them.
        "pages_color": entry.pages_color,
        "pages_grayscale": entry.pages_grayscale,
    }
    if entry.job is not None:
        body["status"] = entry.job.status
        body["job"] = job_json(entry.job)
    if ruled is not None:
        if entry.job is None or ruled.state == "waiting":
            body["status"] = ruled.status
        body["approval"] = ruled_json(ruled)
    return body


def _json_bytes(content: Any) -> bytes:
    """What JSONResponse would send, so cached pages are byte-for-byte the same."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


def accepted_json(accepted: intake.Accepted) -> dict[str, Any]:
    """The answer to an accepted upload or release (``error`` only when printing failed)."""
    body: dict[str, Any] = {
        "id": accepted.document_id,
        "ext_id": accepted.ext_id,
        "title": accepted.title,
        "pages": accepted.pages,
        # How many pages have colour / are grey only (null: not detected); see intake.
        "pages_color": accepted.pages_color,
        "pages_grayscale": accepted.pages_grayscale,
        "queue": accepted.queue,
        "status": accepted.status,
        "cost": to_wire(accepted.cost),
    }
    if accepted.status == "failed":
        body["error"] = accepted.message
    if accepted.status == "waiting":
        body["message"] = accepted.message  # what the holding rule tells the user
    if accepted.rules:
        body["rules"] = list(accepted.rules)  # the rules that held or changed the print
    return body


# --- idempotency ---------------------------------------------------------------------------------

Keyed = idempotency.KeyedRequest[intake.Accepted]


def _idempotency_key(request: Request) -> str | None:
    """The request's checked Idempotency-Key (400 when malformed), None when it has none."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    return None if key is None else idempotency.check_key(key)


def _accepted_answer(accepted: intake.Accepted) -> idempotency.Answer:
    """An accepted upload or release as the bytes sent (and stored for retries)."""
    return idempotency.Answer(200, _json_bytes(accepted_json(accepted)).decode())


def _refusal_answer(error: errors.PrintsrvError) -> idempotency.Answer | None:
    """A refusal as sent (and stored for retries); None for what is not stored: the server's
    own errors (5xx), so a retry runs again, and a malformed request (400), as the money
    endpoints refuse malformed parameters before claiming the key, so the client can correct
    it and send it under the same key."""
    status = status_for(error)
    if status >= 500 or isinstance(error, InvalidInput):
        return None
    return idempotency.Answer(status, bytes(failure(error.message, status).body).decode())


def _keyed(key: str, method: str, path: str, parameters: list[tuple[str, str]]) -> Keyed:
    return idempotency.KeyedRequest(
        key=key,
        fingerprint=idempotency.fingerprint(method, path, parameters),
        render=_accepted_answer,
        refusal=_refusal_answer,
    )


def upload_parameters(upload: Upload) -> list[tuple[str, str]]:
    """What "the same upload" means for an Idempotency-Key: every form field, and the file's
    name, size and SHA-256 (hashed while it streamed to disk), so a retry that sends other
    bytes, another name or other fields under the same key is a 409."""
    parameters = [(f"field:{name}", value) for name, value in upload.fields.items()]
    if upload.path is not None:
        parameters += [
            ("file:name", upload.file_name),
            ("file:size", str(upload.size)),
            ("file:sha256", upload.sha256),
        ]
    return parameters


# --- user services -----------------------------------------------------------------------------


async def print_upload(request: Request) -> Response:
    """POST /documents/print: upload a document (held, or printed through a routed queue)."""
    user = await in_thread(require_user, request)
    key = _idempotency_key(request)  # a bad key is refused before the body is read
    context = PrintContext.of(installation_of(request))
    work_dir = context.store.work_dir()
    try:
        upload = await receive_upload(
            request, work_dir=work_dir, max_file_bytes=context.max_upload_bytes
        )
        upload_of = {
            "user": user,
            "upload": upload,
            "client_host": client_of(request).host,
            "work_dir": work_dir,
        }
        if key is None:
            return JSONResponse(accepted_json(await intake.accept_upload(context, **upload_of)))
        keyed = _keyed(key, request.method, request.url.path, upload_parameters(upload))
        return replied(await intake.accept_upload_once(context, **upload_of, request=keyed))
    finally:
        await in_thread(shutil.rmtree, work_dir, True)


async def print_release(request: Request) -> Response:
    """POST /documents/<id>/print: print a held document (printer=, ipp_options=)."""
    user = await in_thread(require_user, request)
    key = _idempotency_key(request)
    document_id = documents.document_id_of(request.path_params["ref"])
    params = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        async with request.form(max_files=0, max_part_size=MAX_RELEASE_FORM_BYTES) as form:
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    context = PrintContext.of(installation_of(request))
    release = {
        "user": user,
        "document_id": document_id,
        "printer_name": params.get("printer", ""),
        "ipp_options": params.get("ipp_options"),
        "client_host": client_of(request).host,
    }
    if key is None:
        return JSONResponse(accepted_json(await intake.release(context, **release)))
    # The parameters as the service reads them (query and form merged): the same release
    # asked with the printer in the query or in the form is the same request.
    keyed = _keyed(key, request.method, request.url.path, list(params.items()))
    return replied(await intake.release_once(context, **release, request=keyed))


async def list_user_documents(request: Request) -> Response:
    """GET /user/documents: the caller's own uploads and prints, as the admin's log shows
    them (same parameters, same shape), in one read transaction with the credential check.

    Not cached: the caller is checked against the database on every call anyway.
    """
    installation = installation_of(request)

    def page() -> bytes:
        with installation.db.read() as session:
            caller = authenticate_caller(session, request)  # 401 before any 400
            entries = documents.list_documents(session, _selection(request, user_id=caller.id))
            ruled = latest_ruled(session, [e.id for e in entries if e.type == "in"])
        return _json_bytes([log_entry_json(entry, ruled.get(entry.id)) for entry in entries])

    return Response(await installation.db.run(page), media_type="application/json")


# --- admin services ----------------------------------------------------------------------------


def _int_param(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    value = text.strip()
    # isascii: str.isdigit() also takes "²", which int() refuses; nine digits keep the page's
    # offset within a database integer (both were 500s, found by fuzzing).
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise InvalidInput(f"{name} {text[:20]!r} is not a whole number from 0 to 999999999")
    return int(value)


def _moment(request: Request, name: str, *, end_of_day: bool) -> datetime | None:
    """``created_gte``/``created_lte``: a date (whole day, server time) or an ISO time."""
    text = request.query_params.get(name)
    if not text:
        return None
    value = text.strip().replace(" ", "+")  # a '+' in a query string arrives as a space
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day, time.max if end_of_day else time.min)
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{name} {text[:40]!r} is not a date (2019-09-13) or time (2019-09-13T09:18:38+02:00)"
        ) from None
    try:
        if moment.tzinfo is None:
            moment = moment.astimezone()  # the server's local time, as `created` is shown
        # The database compares in UTC: a time that is none there (0001-01-01 at +18:00)
        # made the driver overflow, a 500 (found by fuzzing).
        moment.astimezone(UTC)
    except (OverflowError, ValueError):  # ValueError: "year 0 is out of range" (local time)
        raise InvalidInput(f"{name} {text[:40]!r} is outside the years 1-9999 in UTC") from None
    return moment


def _newest_first(request: Request) -> bool:
    sort = request.query_params.get("sort", "-created").strip()
    if sort == "-created":
        return True
    if sort in ("+created", "created"):  # '+created' arrives as ' created', stripped
        return False
    raise InvalidInput(f"sort {sort[:40]!r} is not -created or +created")


def _selection(request: Request, *, user_id: int | None = None) -> documents.DocumentFilter:
    """The log's query parameters (400 naming a bad one), for the admin's or a user's view."""
    return documents.DocumentFilter(
        doc_type=request.query_params.get("type", "all").strip().lower(),
        newest_first=_newest_first(request),
        limit=_int_param(request, "limit", 5),
        page=_int_param(request, "page", 0),
        created_gte=_moment(request, "created_gte", end_of_day=False),
        created_lte=_moment(request, "created_lte", end_of_day=True),
        user_id=user_id,
    )


async def list_documents(request: Request) -> Response:
    """GET /documents: a page of the whole log (admin), cached on PostgreSQL."""
    require_admin(request)
    selection = _selection(request)
    installation = installation_of(request)
    cache = installation.document_log
    body, ticket = cache.lookup(selection)
    if body is None:
        entries = await documents.read_page(installation.db, selection)
        body = _json_bytes([log_entry_json(entry) for entry in entries])
        cache.store(selection, ticket, body)
    return Response(body, media_type="application/json")


async def get_document(request: Request) -> Response:
    """GET /documents/<id> | /documents/ext_id=<ext_id>: one entry, as the list shows it."""
    require_admin(request)
    entry = await documents.read_entry(installation_of(request).db, request.path_params["ref"])
    return JSONResponse(log_entry_json(entry))


async def _decision_params(request: Request) -> dict[str, str]:
    """``comment`` from the query string or a form body."""
    params = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        async with request.form(max_files=0, max_part_size=MAX_RELEASE_FORM_BYTES) as form:
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def decision_json(decision: approval.Decision) -> dict[str, Any]:
    """The answer to an approval or a denial."""
    body: dict[str, Any] = {
        "id": decision.document_id,
        "state": decision.state,
        "printer": decision.printer,
        "cost": to_wire(decision.cost),
    }
    if decision.job_state:
        body["job_state"] = decision.job_state
    if decision.message:
        body["error"] = decision.message
    return body


async def approve_document(request: Request) -> Response:
    """POST /documents/<ref>/approve: charge and print a document a rule held (admin)."""
    admin = require_admin(request)
    params = await _decision_params(request)
    decision = await in_thread(
        approval.approve_document,
        installation_of(request),
        request.path_params["ref"],
        admin=admin,
        comment=params.get("comment"),
    )
    return JSONResponse(decision_json(decision))


async def deny_document(request: Request) -> Response:
    """POST /documents/<ref>/deny: refuse a document a rule held, with a reason (admin)."""
    admin = require_admin(request)
    params = await _decision_params(request)
    decision = await in_thread(
        approval.deny_document,
        installation_of(request),
        request.path_params["ref"],
        admin=admin,
        comment=params.get("comment"),
    )
    return JSONResponse(decision_json(decision))


def waiting_json(waiting: approval.WaitingPrint) -> dict[str, Any]:
    """One print waiting for approval; ``ref`` is what /approve and /deny take."""
    return {
        "ref": waiting.ref,
        "ext_id": waiting.ext_id,
        "user": waiting.user,
        "title": waiting.title,
        "pages": waiting.pages,
        "printer": waiting.printer,
        "queue": waiting.queue,
        "cost": to_wire(waiting.cost),
        "rules": list(waiting.rules),
        "message": waiting.message,
        "waiting_since": created_text(waiting.waiting_since),
    }


async def list_waiting(request: Request) -> Response:
    """GET /documents/waiting: the prints waiting for approval, the longest waiting first
    (admin)."""
    require_admin(request)
    limit = _int_param(request, "limit", 100)
    offset = _int_param(request, "offset", 0)
    db = installation_of(request).db

    def read() -> list[approval.WaitingPrint]:
        with db.read() as session:
            return approval.list_waiting(session, limit=limit, offset=offset)

    return JSONResponse([waiting_json(w) for w in await in_thread(read)])


def _download_name(document: Document) -> str:
    stem = _FILE_NAME_UNSAFE.sub("_", document.title.rsplit(".", 1)[0]).strip(" ._")[:100]
    return f"{stem or document.id}.pdf"


async def get_pdf(request: Request) -> Response:
    require_admin(request)
    document = await documents.read_document(
        installation_of(request).db, request.path_params["ref"]
    )
    store = PrintContext.of(installation_of(request)).store
    path = store.path_for(document.pdf_sha256)
    if not document.store or not path.is_file():
        raise NotFound(f"The PDF of document {document.id} is no longer stored")
    return FileResponse(path, media_type="application/pdf", filename=_download_name(document))


__all__ = [
    "accepted_json",
    "approve_document",
    "created_text",
    "decision_json",
    "deny_document",
    "get_document",
    "get_pdf",
    "job_json",
    "list_documents",
    "list_user_documents",
    "list_waiting",
    "log_entry_json",
    "print_release",
    "print_upload",
    "ruled_json",
    "upload_parameters",
    "waiting_json",
]

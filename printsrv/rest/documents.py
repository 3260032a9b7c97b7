"""REST documents: print (user), release from the inbox (user), and the document log (admin).

POST /documents/print                      user: upload a document to a queue
POST /documents/<id>/print                 user: print a held document (printer=...)
GET  /documents?sort=&type=&limit=&page=&created_gte=&created_lte=      admin: the log
GET  /documents/<id> | /documents/ext_id=<ext_id>                       admin: one entry
GET  /documents/<id>/pdf | /documents/ext_id=<ext_id>/pdf               admin: its PDF
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import date, datetime, time
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from financial.money import to_wire
from printsrv import documents
from printsrv.errors import InvalidInput, NotFound
from printsrv.models import Document
from printsrv.printing import intake
from printsrv.printing.context import PrintContext
from printsrv.printing.jobs import in_thread
from printsrv.requests import client_of, installation_of
from printsrv.rest.guards import require_admin, require_user
from printsrv.uploads import receive_upload

_EXT_PREFIX: Final = "ext_id="
_FILE_NAME_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")
MAX_RELEASE_FORM_BYTES: Final = 64 * 1024


# --- rendering ---------------------------------------------------------------------------------


def created_text(moment: datetime) -> str:
    """``2019-09-13T09:18:38+0200``: the server's local time with its offset, as SavaPage."""
    return moment.astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")


def document_json(document: Document) -> dict[str, Any]:
    """One log entry in the contract's shape."""
    return {
        "id": document.id,
        "ext_id": documents.external_id(document),
        "type": document.doc_type,
        "title": document.title,
        "created": created_text(document.created_at),
        "store": document.store,
    }


def log_entry_json(entry: documents.LogEntry) -> dict[str, Any]:
    """One row of `documents.list_documents` in the contract's shape (as `document_json`)."""
    return {
        "id": entry.id,
        "ext_id": entry.ext_id,
        "type": entry.type,
        "title": entry.title,
        "created": created_text(entry.created_at),
        "store": entry.store,
    }


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
    return body


# --- user services -----------------------------------------------------------------------------


async def print_upload(request: Request) -> Response:
    user = await in_thread(require_user, request)
    context = PrintContext.of(installation_of(request))
    work_dir = context.store.work_dir()
    try:
        upload = await receive_upload(
            request, work_dir=work_dir, max_file_bytes=context.max_upload_bytes
        )
        accepted = await intake.accept_upload(
            context,
            user=user,
            upload=upload,
            client_host=client_of(request).host,
            work_dir=work_dir,
        )
    finally:
        await in_thread(shutil.rmtree, work_dir, True)
    return JSONResponse(accepted_json(accepted))


async def print_release(request: Request) -> Response:
    user = await in_thread(require_user, request)
    document_id = _document_id(request.path_params["ref"])
    params = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        async with request.form(max_files=0, max_part_size=MAX_RELEASE_FORM_BYTES) as form:
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    accepted = await intake.release(
        PrintContext.of(installation_of(request)),
        user=user,
        document_id=document_id,
        printer_name=params.get("printer", ""),
        ipp_options=params.get("ipp_options"),
        client_host=client_of(request).host,
    )
    return JSONResponse(accepted_json(accepted))


# --- admin services ----------------------------------------------------------------------------


def _document_id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise NotFound(f"Document {text[:40]!r} does not exist")
    return int(text)


def _find(request: Request) -> Document:
    ref: str = request.path_params["ref"]
    with installation_of(request).db.read() as session:
        if ref.startswith(_EXT_PREFIX):
            document = documents.find_by_ext_id(session, ref[len(_EXT_PREFIX) :])
        else:
            document = documents.get_document(session, _document_id(ref))
        _ = document.source  # loaded for external_id, before the session closes
        return document


def _int_param(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    if not text.strip().isdigit():
        raise InvalidInput(f"{name} {text[:20]!r} is not a whole number >= 0")
    return int(text)


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
    if moment.tzinfo is None:
        moment = moment.astimezone()  # the server's local time, as `created` is shown
    return moment


def _newest_first(request: Request) -> bool:
    sort = request.query_params.get("sort", "-created").strip()
    if sort == "-created":
        return True
    if sort in ("+created", "created"):  # '+created' arrives as ' created', stripped
        return False
    raise InvalidInput(f"sort {sort[:40]!r} is not -created or +created")


async def list_documents(request: Request) -> Response:
    require_admin(request)
    selection = documents.DocumentFilter(
        doc_type=request.query_params.get("type", "all").strip().lower(),
        newest_first=_newest_first(request),
        limit=_int_param(request, "limit", 5),
        page=_int_param(request, "page", 0),
        created_gte=_moment(request, "created_gte", end_of_day=False),
        created_lte=_moment(request, "created_lte", end_of_day=True),
    )
    installation = installation_of(request)
    cache = installation.document_log
    body, ticket = cache.lookup(selection)
    if body is None:

        def page() -> bytes:
            with installation.db.read() as session:
                entries = documents.list_documents(session, selection)
            return _json_bytes([log_entry_json(entry) for entry in entries])

        body = await in_thread(page)
        cache.store(selection, ticket, body)
    return Response(body, media_type="application/json")


async def get_document(request: Request) -> Response:
    require_admin(request)
    return JSONResponse(document_json(await in_thread(_find, request)))


def _download_name(document: Document) -> str:
    stem = _FILE_NAME_UNSAFE.sub("_", document.title.rsplit(".", 1)[0]).strip(" ._")[:100]
    return f"{stem or document.id}.pdf"


async def get_pdf(request: Request) -> Response:
    require_admin(request)
    document = await in_thread(_find, request)
    store = PrintContext.of(installation_of(request)).store
    path = store.path_for(document.pdf_sha256)
    if not document.store or not path.is_file():
        raise NotFound(f"The PDF of document {document.id} is no longer stored")
    return FileResponse(path, media_type="application/pdf", filename=_download_name(document))


__all__ = [
    "accepted_json",
    "created_text",
    "document_json",
    "get_document",
    "get_pdf",
    "list_documents",
    "print_release",
    "print_upload",
]

"""REST release for terminals: POST /release (docs/release-station.md).

A hardware card reader or an MFP app next to a printer, at an address in
``release.station.ip-addresses-allowed``, sends ``{"printer": P, "card": C}`` or
``{"printer": P, "user": U, "pin": N}`` and gets the person's held documents with pages
and price; adding ``"documents": [ids] | "all"`` releases them to that printer first.
Answers use the REST envelope; refusals come from the one error table (429 with
Retry-After after too many failed attempts).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from financial import to_wire
from printsrv.http import client_of, installation_of, read_body
from printsrv.release.held import HeldDocument, Released
from printsrv.release.stations import TerminalAnswer, terminal_release
from printsrv.rest.responses import success

MAX_BODY = 16 * 1024


async def release(request: Request) -> Response:
    """POST /release: list a person's held documents at a printer, or release them.

    The body is read by the service, after it has checked the station allowlist.
    """
    answer = await terminal_release(
        installation_of(request),
        client=client_of(request),
        read_body=partial(read_body, request, MAX_BODY),
    )
    return success(answer_json(answer))


def _held(document: HeldDocument) -> dict[str, Any]:
    return {
        "id": document.document_id,
        "title": document.title,
        "pages": document.pages,
        "price": None if document.price is None else to_wire(document.price),
        "created": document.created.isoformat(timespec="seconds"),
        "problem": document.problem,
    }


def _released(outcome: Released) -> dict[str, Any]:
    return {
        "id": outcome.document_id,
        "status": outcome.status,
        "cost": to_wire(outcome.cost),
        "message": outcome.message,
    }


def answer_json(answer: TerminalAnswer) -> dict[str, Any]:
    """The ``result`` of a terminal's request."""
    result: dict[str, Any] = {
        "user": answer.user_name,
        "printer": answer.printer,
        "documents": [_held(d) for d in answer.held],
    }
    if answer.released is not None:
        result["released"] = [_released(r) for r in answer.released]
    return result

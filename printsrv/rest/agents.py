"""REST for print agents: /agent/printers, /agent/jobs/next (the long-poll),
/agent/jobs/{job}/pdf, /renew and /state (docs/agents.md).

The caller is an agent: `Authorization: Bearer <token>` and `Printsrv-Agent: <name>`, only
over TLS off loopback (directly or through a trusted proxy), like every credentialed API.
A wrong or removed token is 401 before anything is read; another agent's job is 404.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from printsrv.accounts.reports import strict_json
from printsrv.agents import actions
from printsrv.agents.actions import Caller
from printsrv.agents.dispatch import ClaimedJob
from printsrv.errors import InvalidInput, NotAuthenticated
from printsrv.http import client_of, installation_of, read_body
from printsrv.platform.security import MAX_AUTHORIZATION_LENGTH, require_tls

T = TypeVar("T")

MAX_BODY = 4 * 1024 * 1024  # a site with 200 printers and their media lists
AGENT_HEADER = "printsrv-agent"


def _caller(request: Request) -> Caller:
    """The agent's name and token, once TLS (off loopback) is known to protect them."""
    client = client_of(request)
    require_tls(client, "The agent API")
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    name = request.headers.get(AGENT_HEADER, "")
    if scheme.lower() != "bearer" or not token.strip() or len(header) > MAX_AUTHORIZATION_LENGTH:
        raise NotAuthenticated("Send the agent's token as 'Authorization: Bearer <token>'")
    if not name:
        raise NotAuthenticated("Send the agent's name as 'Printsrv-Agent: <name>'")
    return Caller(name=name[:100], token=token.strip(), address=client.host or "")


def _claim(request: Request) -> str:
    claim = request.query_params.get("claim", "")
    if not claim:
        raise InvalidInput(
            "Give the job's claim: ?claim=<token from /agent/jobs/next>", reason="claim"
        )
    return claim


async def register_printers(request: Request) -> Response:
    """POST /agent/printers: the agent's printers, replacing what it registered before."""
    caller = _caller(request)
    document = strict_json(await read_body(request, MAX_BODY), '{"printers": [...]}')
    names = await actions.register(installation_of(request), caller, document)
    return JSONResponse({"printers": names})


def _job(claimed: ClaimedJob) -> dict[str, Any]:
    return {
        "id": claimed.job_id,
        "claim": claimed.claim,
        "printer": claimed.printer,
        "title": claimed.title,
        "user": claimed.user_name,
        "options": claimed.options,
        "pages": claimed.pages,
        "pdf_sha256": claimed.pdf_sha256,
        "attempt": claimed.attempt,
        "lease_until": claimed.lease_until.isoformat(),
    }


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """``work``, cancelled if the client goes away first (a long-poll's agent restarting)."""

    async def gone() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return

    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None
    return task.result()


async def next_job(request: Request) -> Response:
    """GET /agent/jobs/next?wait=SECS: claim the next job, waiting for one (long-poll).

    `{"job": {...}}` with the claim, or `{"job": null}` when none came in time.
    """
    caller = _caller(request)
    text = request.query_params.get("wait", "")
    if text and not (text.isascii() and text.isdigit() and len(text) <= 9):  # not "²"
        raise InvalidInput("Query parameter 'wait' must be whole seconds", reason="wait")
    wait = int(text) if text else 10**6  # capped by agents.poll-secs
    claimed = await _unless_disconnected(
        request, actions.next_job(installation_of(request), caller, float(wait))
    )
    return JSONResponse({"job": None if claimed is None else _job(claimed)})


async def job_pdf(request: Request) -> Response:
    """GET /agent/jobs/{job}/pdf?claim=C: the PDF of a job the agent holds."""
    caller = _caller(request)
    path = await actions.open_pdf(
        installation_of(request), caller, request.path_params["job"], _claim(request)
    )
    return FileResponse(path, media_type="application/pdf")


async def renew(request: Request) -> Response:
    """POST /agent/jobs/{job}/renew {"claim"}: extend the lease while CUPS works."""
    caller = _caller(request)
    document = strict_json(await read_body(request, 4096), '{"claim": "..."}')
    claim = document.get("claim") if isinstance(document, dict) else None
    if not isinstance(claim, str) or not claim:
        raise InvalidInput("Field 'claim' must be the job's claim token", reason="claim")
    until = await actions.renew(installation_of(request), caller, request.path_params["job"], claim)
    return JSONResponse({"lease_until": until.isoformat()})


async def report(request: Request) -> Response:
    """POST /agent/jobs/{job}/state {"claim", "state", ...}: how the job is doing."""
    caller = _caller(request)
    document = strict_json(
        await read_body(request, 64 * 1024), '{"claim": "...", "state": "completed"}'
    )
    state = await actions.report(
        installation_of(request), caller, request.path_params["job"], document
    )
    return JSONResponse({"job": request.path_params["job"], "state": state})

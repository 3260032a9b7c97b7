"""REST for print agents: /agent/printers, /agent/jobs/next (the long-poll),
/agent/jobs/{job}/pdf, /renew and /state, and /agent/jobs/states (reports in a batch)
(docs/agents.md).

The caller is an agent: `Authorization: Bearer <token>` and `Printsrv-Agent: <name>`, only
over TLS off loopback (directly or through a trusted proxy), like every credentialed API.
A wrong or removed token is 401 before anything is read; another agent's job is 404.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from printsrv.accounts.reports import strict_json
from printsrv.agents import actions
from printsrv.agents.actions import Caller
from printsrv.agents.dispatch import ClaimedJob
from printsrv.error_table import answer_for
from printsrv.errors import InvalidInput, NotAuthenticated
from printsrv.http import client_of, installation_of, read_body
from printsrv.platform.security import MAX_AUTHORIZATION_LENGTH, require_tls
from printsrv.platform.threads import in_thread

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


def _job(claimed: ClaimedJob, pdf: bytes | None = None) -> dict[str, Any]:
    more = {} if pdf is None else {"pdf_base64": base64.b64encode(pdf).decode("ascii")}
    return {
        **more,
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
    """GET /agent/jobs/next?wait=SECS&max=N&inline=BYTES: claim the next jobs, waiting for
    one (long-poll).

    `{"job": {...}, "jobs": [{...}, ...]}`: up to `max` (default 1, at most 16) jobs, each
    with its own claim, oldest first; `job` is the first of them (what agents before
    batches read). `{"job": null, "jobs": []}` when none came in time. With `inline`, a
    job whose PDF is at most that many bytes (at most 1 MiB) carries it as `pdf_base64`.
    """
    caller = _caller(request)
    text = request.query_params.get("wait", "")
    if text and not (text.isascii() and text.isdigit() and len(text) <= 9):  # not "²"
        raise InvalidInput("Query parameter 'wait' must be whole seconds", reason="wait")
    wait = int(text) if text else 10**6  # capped by agents.poll-secs
    most = request.query_params.get("max", "1")
    if not (most.isascii() and most.isdigit()) or not 1 <= int(most) <= actions.MAX_BATCH:
        raise InvalidInput(
            f"Query parameter 'max' must be a whole number from 1 to {actions.MAX_BATCH}",
            reason="max",
        )
    inline = request.query_params.get("inline", "0")
    if not (inline.isascii() and inline.isdigit()) or int(inline) > actions.MAX_INLINE:
        raise InvalidInput(
            f"Query parameter 'inline' must be bytes, at most {actions.MAX_INLINE}",
            reason="inline",
        )
    installation = installation_of(request)
    claimed = await _unless_disconnected(
        request, actions.next_job(installation, caller, float(wait), int(most))
    )
    pdfs: dict[int, bytes] = {}
    if claimed and int(inline):
        pdfs = await in_thread(actions.inline_pdfs, installation, claimed, int(inline))
    jobs = [_job(one, pdfs.get(one.job_id)) for one in claimed or []]
    return JSONResponse({"job": jobs[0] if jobs else None, "jobs": jobs})


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


async def report_many(request: Request) -> Response:
    """POST /agent/jobs/states {"reports": [{"job", "claim", "state", ...}, ...]}: several
    reports in one request, each applied as if sent alone to /agent/jobs/{job}/state.

    `{"results": [{"job": ID, "state": "completed"}, {"job": ID, "status": 409, "error":
    "..."}, ...]}` in the order sent; one refusal leaves the others applied.
    """
    caller = _caller(request)
    document = strict_json(
        await read_body(request, MAX_BODY), '{"reports": [{"job": 1, "claim": "...", ...}]}'
    )
    outcomes = await actions.report_many(installation_of(request), caller, document)
    results: list[dict[str, Any]] = []
    for outcome in outcomes:
        if outcome.error is None:
            results.append({"job": outcome.job_id, "state": outcome.state})
        else:
            results.append(
                {
                    "job": outcome.job_id,
                    "status": answer_for(outcome.error).status,
                    "error": outcome.error.message,
                }
            )
    return JSONResponse({"results": results})

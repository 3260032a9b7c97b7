"""REST jobs: POST /jobs, GET /jobs/{key}, GET /jobs/{key}/files/{name} (docs/jobs.md).

Asynchronous jobs in ONLYOFFICE Document Builder's pattern: the first request
`{"async": true, "type": ..., "argument": {...}}` is answered at once with
`{"key", "end": false}`; polls (`{"async": true, "key": ...}`, or GET) answer
`{"key", "end": false, "progress"}` until `{"key", "end": true, "urls": {...}}` or
`{"key", "end": true, "error": <code>, "message"}`. `"async": false` waits for the end.

Who calls: the REST admin (Basic credentials and address allowlist, as `require_admin`) when
the user name is the admin's, else a user by name and UUID (as the REST user services). A
malformed request is refused in the REST envelope (400, 401, 403, 404 for a key that is
missing or someone else's, 410 once a result expired); a bad JWT answers `{"error": -8}`
with 403; how a job ended is in the job answer itself, with 200.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from printsrv.accounts.reports import strict_json
from printsrv.errors import InvalidInput
from printsrv.http import client_of, header_in, installation_of, read_body
from printsrv.jobs import actions
from printsrv.jobs.service import INVALID_TOKEN, JobView, Owner
from printsrv.jobs.tokens import InvalidJobToken, unwrap_request
from printsrv.platform.security import (
    equals_constant_time,
    parse_basic_authorization,
    require_tls,
)
from printsrv.rest.guards import authenticate_user, require_admin, user_credentials
from printsrv.rest.responses import JsonAnswer

MAX_BODY = 64 * 1024
# A job is polled many times with the same key and file names: quote each once.
_quoted = functools.lru_cache(maxsize=4096)(quote)
_FIELDS = frozenset({"async", "type", "argument", "key"})


async def post_job(request: Request) -> Response:
    """POST /jobs: start a job, or poll one by key (`async` false: wait for its end)."""
    owner = await _caller(request)
    installation = installation_of(request)
    document = strict_json(await read_body(request, MAX_BODY), '{"async": true, "type": "..."}')
    try:
        document = unwrap_request(document, installation.config.snapshot()["api.jobs.jwt-secret"])
    except InvalidJobToken as error:
        return JsonAnswer({"error": INVALID_TOKEN, "message": error.message}, status_code=403)
    wait, key, type_name, argument = _parse(document)
    if key is None:
        view = await actions.start_job(
            installation, type_name=type_name, argument=argument, owner=owner
        )
        if not wait:
            return JsonAnswer({"key": view.key, "end": False})
        key = view.key
    view = await (actions.wait_job if wait else actions.poll_job)(installation, key, owner)
    return JsonAnswer(_answer(request, view))


async def get_job(request: Request) -> Response:
    """GET /jobs/{key}: poll a job."""
    owner = await _caller(request)
    view = await actions.poll_job(installation_of(request), request.path_params["key"], owner)
    return JsonAnswer(_answer(request, view))


async def get_job_file(request: Request) -> Response:
    """GET /jobs/{key}/files/{name}: a result file, streamed from the database."""
    owner = await _caller(request)
    found, chunks = await actions.open_result(
        installation_of(request),
        request.path_params["key"],
        request.path_params["name"],
        owner,
    )
    return StreamingResponse(
        chunks,
        media_type=found.media_type,
        headers={
            "Content-Length": str(found.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(found.name)}",
        },
    )


# --- the caller and the request --------------------------------------------------------------


async def _caller(request: Request) -> Owner:
    """The REST admin when the Basic user name is the admin's, else a user (name + UUID)."""
    installation = installation_of(request)
    require_tls(client_of(request), "The REST jobs API")
    credentials = parse_basic_authorization(header_in(request.scope, b"authorization"))
    admin_name = installation.config.snapshot()["api.restful.auth.username"]
    if admin_name and equals_constant_time(credentials.username, admin_name):
        return Owner.admin(require_admin(request, credentials))
    user_credentials(request)  # maintenance keeps users out

    def authenticate() -> Owner:
        with installation.db.read() as session:
            user = authenticate_user(session, request, credentials)
            return Owner.user(user.id, user.user_name)

    return await installation.db.run(authenticate)


def _parse(document: Any) -> tuple[bool, str | None, Any, Any]:
    """(wait, key, type, argument) of a request; InvalidInput naming the bad field."""
    if not isinstance(document, dict):
        raise InvalidInput("The body must be a JSON object", reason="body")
    unknown = sorted(set(document) - _FIELDS)
    if unknown:
        raise InvalidInput(
            f"Field {unknown[0]!r} is not known (expected: {', '.join(sorted(_FIELDS))})",
            reason=unknown[0],
        )
    is_async = document.get("async", False)
    if not isinstance(is_async, bool):
        raise InvalidInput("Field 'async' must be true or false", reason="async")
    key = document.get("key")
    if key is not None:
        if not isinstance(key, str) or not key:
            raise InvalidInput("Field 'key' must be a job's key (a string)", reason="key")
        for field in ("type", "argument"):
            if field in document:
                raise InvalidInput(
                    f"Field {field!r} is not expected with 'key': a poll names only the job",
                    reason=field,
                )
        return not is_async, key, None, None
    if "type" not in document:
        raise InvalidInput("Field 'type' is missing: name the job type, or send a 'key'")
    return not is_async, None, document["type"], document.get("argument")


def _answer(request: Request, view: JobView) -> dict[str, Any]:
    if not view.end:
        return {"key": view.key, "end": False, "progress": view.progress}
    if view.state == "done":
        base = _base_url(request)
        key = _quoted(view.key)
        urls = {name: f"{base}/jobs/{key}/files/{_quoted(name)}" for name in view.files}
        return {"key": view.key, "end": True, "urls": urls}
    return {"key": view.key, "end": True, "error": view.error_code, "message": view.message}


def _base_url(request: Request) -> str:
    """/restful/v1 as the client reached it (through a trusted proxy's host and scheme)."""
    client = client_of(request)
    host = f"[{client.server_name}]" if ":" in client.server_name else client.server_name
    default = 443 if client.scheme == "https" else 80
    port = "" if client.server_port in (None, default) else f":{client.server_port}"
    return f"{client.scheme}://{host}{port}{request.scope.get('root_path', '')}"

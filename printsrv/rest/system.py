"""REST public and admin test services: version, the request as the server sees it, echo."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from printsrv import __version__
from printsrv.http import client_of, read_body
from printsrv.rest.guards import require_admin

ECHO_LIMIT = 1024 * 1024
# Reflecting these would hand a script that can read the response what HttpOnly cookies and
# credentials are meant to keep from it (the old cross-site tracing attack).
HIDDEN_HEADERS = {"authorization", "cookie", "proxy-authorization", "x-auth-key"}
BUILD = datetime.now(UTC).strftime("%Y%m%d")


def version_text() -> str:
    """`printsrv 0.1.0 (Build 20261123)`, shaped like SavaPage's answer."""
    return f"printsrv {__version__} (Build {BUILD})"


async def version(request: Request) -> Response:
    return PlainTextResponse(version_text())


def _bracket(host: str | None) -> str:
    return f"[{host}]" if host and ":" in host else (host or "")


def _canonical(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


async def http_request(request: Request) -> Response:
    client = client_of(request)
    server = request.scope.get("server")
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1")
        value = "[secure]" if name in HIDDEN_HEADERS else raw_value.decode("latin-1")
        key = _canonical(name)
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return JSONResponse(
        {
            "remoteAddr": _bracket(client.host),
            "remoteHost": _bracket(client.host),
            "remotePort": client.port,
            "localAddr": _bracket(server[0]) if server else "",
            "serverName": client.server_name,
            "serverPort": client.server_port,
            "headers": headers,
        }
    )


async def echo(request: Request) -> Response:
    require_admin(request)
    body = await read_body(request, ECHO_LIMIT)
    content_type = request.headers.get("content-type", "text/plain")
    # Echo only inert types back as such, so the endpoint cannot serve a page of script.
    if content_type.split(";")[0].strip().lower() not in ("text/plain", "application/json"):
        content_type = "application/octet-stream"
    return Response(body, media_type=content_type, headers={"X-Content-Type-Options": "nosniff"})

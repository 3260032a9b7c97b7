"""What every adapter reads off an incoming request: the installation, the real client, a body.

Kept apart from the adapters so REST, JSON-RPC, XML-RPC and the web app resolve clients and
cap bodies the same way.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope

from printsrv.errors import PayloadTooLarge
from printsrv.operations.installation import Installation
from printsrv.platform.security import Client, address_in, resolve_client

# The only headers resolve_client reads; decoding the rest on every request is waste.
_CLIENT_HEADERS = frozenset(
    {b"host", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port"}
)


def installation_of(request: Request) -> Installation:
    """The installation the app serving this request was built for."""
    installation: Installation = request.scope["state"]["installation"]
    return installation


def installation_in(scope: Scope) -> Installation:
    """The installation, from an ASGI scope (the lifespan state every request carries)."""
    installation: Installation = scope["state"]["installation"]
    return installation


def header_in(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower-case bytes), without building a Headers."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def client_of(request: Request) -> Client:
    """The real client, believing X-Forwarded-* only from `server.trusted-proxies`."""
    cached: Client | None = request.scope.get("printsrv.client")
    return cached if cached is not None else client_in(request.scope)


def client_in(scope: Scope) -> Client:
    """client_of for an ASGI scope; resolved once per request and kept in the scope."""
    cached = scope.get("printsrv.client")
    if cached is not None:
        return cached
    trusted = installation_in(scope).config.snapshot().cidr_set("server.trusted-proxies")
    server = scope.get("server")
    peer = scope.get("client")
    if peer and address_in(peer[0], trusted):
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _CLIENT_HEADERS
        }
    else:
        # Only a trusted proxy's X-Forwarded-* count: from anyone else, just Host.
        host = header_in(scope, b"host")
        headers = {"host": host} if host is not None else {}
    client = resolve_client(
        peer=peer,
        server=(server[0], server[1]) if server else None,
        scheme=scope.get("scheme", "http"),  # request.url would build the whole URL
        headers=headers,
        trusted_proxies=trusted,
    )
    scope["printsrv.client"] = client
    return client


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing with PayloadTooLarge as soon as it passes `limit` bytes.

    Reads the stream rather than trusting Content-Length, so a lying client cannot make
    the server buffer more than the limit.
    """
    return await receive_body(request.scope, request.receive, limit)


async def receive_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """read_body for an ASGI app that builds no Request: the same limit and errors."""
    declared = header_in(scope, b"content-length") or ""
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"Request body of {int(declared)} bytes is over the {limit} byte limit"
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is over the {limit} byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)

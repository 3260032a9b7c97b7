"""What every adapter reads off an incoming request: the installation, the real client, a body.

Kept apart from the adapters so REST, JSON-RPC, XML-RPC and the web app resolve clients and
cap bodies the same way.
"""

from __future__ import annotations

from starlette.requests import Request

from printsrv.errors import PayloadTooLarge
from printsrv.installation import Installation
from printsrv.security import Client, resolve_client

# The only headers resolve_client reads; decoding the rest on every request is waste.
_CLIENT_HEADERS = frozenset(
    {b"host", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port"}
)


def installation_of(request: Request) -> Installation:
    """The installation the app serving this request was built for."""
    installation: Installation = request.state.installation
    return installation


def client_of(request: Request) -> Client:
    """The real client, believing X-Forwarded-* only from `server.trusted-proxies`."""
    cached = request.scope.get("printsrv.client")
    if cached is not None:
        return cached
    trusted = installation_of(request).config.snapshot().cidr_set("server.trusted-proxies")
    server = request.scope.get("server")
    client = resolve_client(
        peer=request.scope.get("client"),
        server=(server[0], server[1]) if server else None,
        scheme=request.scope.get("scheme", "http"),  # request.url would build the whole URL
        headers={
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in request.scope["headers"]
            if name in _CLIENT_HEADERS
        },
        trusted_proxies=trusted,
    )
    request.scope["printsrv.client"] = client
    return client


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing with PayloadTooLarge as soon as it passes `limit` bytes.

    Reads the stream rather than trusting Content-Length, so a lying client cannot make
    the server buffer more than the limit.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"Request body of {int(declared)} bytes is over the {limit} byte limit"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is over the {limit} byte limit")
        chunks.append(chunk)
    return b"".join(chunks)

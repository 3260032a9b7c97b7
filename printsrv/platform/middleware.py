"""ASGI middleware that guards every API before any adapter runs."""

from __future__ import annotations

from itertools import chain
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # ASGI's types only: platform imports no web framework at run time
    from starlette.types import ASGIApp, Receive, Scope, Send

MAX_HEADER_BYTES = 32 * 1024
MAX_HEADER_COUNT = 100


class HeaderLimitMiddleware:
    """Refuse requests whose headers are oversized with 431, before any work is done.

    uvicorn's httptools parser accepts header blocks of any size; no printsrv client needs
    more than a few kilobytes, and a cap keeps a hostile client from making every later
    layer copy megabytes of headers.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int = MAX_HEADER_BYTES, max_count: int = MAX_HEADER_COUNT
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_count = max_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            # Summed in C (map over the flattened pairs): a generator cost a Python frame
            # per header on every request.
            size = sum(map(len, chain.from_iterable(headers))) + 4 * len(headers)
            if size > self.max_bytes or len(headers) > self.max_count:
                body = (
                    f"Request Header Fields Too Large: at most {self.max_count} headers "
                    f"of {self.max_bytes} bytes in all\n"
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 431,
                        "headers": [
                            (b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

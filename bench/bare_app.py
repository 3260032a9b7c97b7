"""The baseline app: the least a Starlette endpoint can do for the same request.

It reads the body and answers a constant JSON, the shape printsrv's systemStatus gives.
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

STATUS = b'{"jsonrpc":"2.0","id":"reference","result":{"data":{"@type":"enum","value":"READY"}}}'


async def status(request: Request) -> Response:
    await request.body()
    return Response(STATUS, media_type="application/json")


async def ping(request: Request) -> Response:
    return Response(b"ok")


app = Starlette(routes=[Route("/jsonrpc/v1", status, methods=["POST"]), Route("/ping", ping)])

"""The baseline app: the least a Starlette endpoint can do for the same request.

`/jsonrpc/v1` reads the body and answers a constant JSON, the shape printsrv's systemStatus
gives. `/restful/v1/documents` answers the bytes of the file named by
BENCH_BARE_DOCUMENTS_FILE (what printsrv answered to the same request, captured by
bench/rest_documents.py), so both sides send the same number of bytes; `/restful/v1/jobs/{key}`
those of BENCH_BARE_JOB_FILE (a finished job's poll answer, captured by bench/jobs.py).
"""

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

STATUS = b'{"jsonrpc":"2.0","id":"reference","result":{"data":{"@type":"enum","value":"READY"}}}'
_documents_file = os.environ.get("BENCH_BARE_DOCUMENTS_FILE")
DOCUMENTS = Path(_documents_file).read_bytes() if _documents_file else b"[]"
_job_file = os.environ.get("BENCH_BARE_JOB_FILE")
JOB = Path(_job_file).read_bytes() if _job_file else b"{}"


async def status(request: Request) -> Response:
    await request.body()
    return Response(STATUS, media_type="application/json")


async def documents(request: Request) -> Response:
    return Response(DOCUMENTS, media_type="application/json")


async def job(request: Request) -> Response:
    return Response(JOB, media_type="application/json")


async def ping(request: Request) -> Response:
    return Response(b"ok")


app = Starlette(
    routes=[
        Route("/jsonrpc/v1", status, methods=["POST"]),
        Route("/restful/v1/documents", documents),
        Route("/restful/v1/jobs/{key}", job),
        Route("/ping", ping),
    ]
)
